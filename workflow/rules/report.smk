# Aggregation (store long, render late) and the report.


# Cheap CPU-only steps: run on the submitting host, never through a cluster executor.
localrules:
    aggregate,
    claims,
    report,
    noise_distance,  # the join of the per-model noise-distance tables


PAPER_VALUES = f"{workflow.basedir}/data/paper_values.csv"  # published numbers (paper vs ours)


rule aggregate:
    input:
        score_files(),
    output:
        summary=f"{R}/tables/summary.csv",
        per_concept=f"{R}/tables/per_concept.csv",
        paired=f"{R}/tables/paired.csv",
    log:
        f"{R}/logs/aggregate.log",
    benchmark:
        f"{R}/benchmarks/aggregate.tsv"
    params:
        out=f"{R}/tables",
        experiments=opts(PLAN.membership()),
    shell:
        "exec {PY} -m dcobench aggregate --scores {input} --out-dir {params.out} "
        "--experiments {params.experiments} > {log} 2>&1"


# The pre-registered claims (report.claims) tested on the score tables this DAG declares and the
# noise-distance table: effect, 95% CI and verdict per test, "not run" where an arm is absent.
# Requested only when report.claims names a file (claims_files()).
rule claims:
    input:
        claims=config["report"].get("claims") or [],
        scores=score_files(),
        noise=noise_distance_files(),  # [] when no selected experiment runs the analysis
    output:
        f"{R}/tables/claims.csv",
    log:
        f"{R}/logs/claims.log",
    benchmark:
        f"{R}/benchmarks/claims.tsv"
    params:
        noise=noise_flag_of,
    shell:
        "exec {PY} -m dcobench claims --claims {input.claims} --scores {input.scores} "
        "{params.noise} --out {output} > {log} 2>&1"


rule report:
    input:
        summary=f"{R}/tables/summary.csv",
        per_concept=f"{R}/tables/per_concept.csv",
        paired=f"{R}/tables/paired.csv",
        paper=PAPER_VALUES,
        noise=noise_distance_files(),  # [] when no selected experiment runs the analysis
        cosine=lora_cosine_files(),  # analysis.smk; [] when no experiment asks for lora_cosine
        claims=claims_files(),  # [] when report.claims is null
        logs=train_logs(),
        samples=sample_indexes(),
        prepared=[prepared(n) for n in CONCEPTS],  # reference images beside the grids
    output:
        html=report(
            f"{R}/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
        paper=f"{R}/tables/paper_vs_ours.csv",
        paper_text=[f"{R}/tables/paper_vs_ours.md", f"{R}/tables/paper_vs_ours.tex"],
        experiments=experiment_tables(),  # tables/{experiment}/, written only by the report
        cosine=lora_cosine_tables(),  # [] when no experiment asks for lora_cosine
        figures=directory(f"{R}/figures"),
    log:
        f"{R}/logs/report.log",
    benchmark:
        f"{R}/benchmarks/report.tsv"
    params:
        title=shlex.quote(config["report"]["title"]),
        bench="results/bench",  # benchmark JSONs (dcobench bench); read when present
        grids=config["report"]["grids_per_experiment"],  # defaults: the schema
        prompts=config["report"]["grid_prompts"],
        losses=config["report"]["loss_plots_inline"],
        analyses=analysis_flags_of,
        caveat=claims_caveat_flag(),  # "" unless report.claims_caveat is set
    shell:
        "exec {PY} -m dcobench report --exp-dir {R} --title {params.title} --out {output.html} "
        "--paper-values {input.paper} --bench-dir {params.bench} "
        "--grids-per-experiment {params.grids} --grid-prompts {params.prompts} "
        "--loss-plots-inline {params.losses} --train-logs {input.logs} --samples {input.samples} "
        "--prepared {input.prepared} "
        "{params.analyses}{params.caveat} > {log} 2>&1"
