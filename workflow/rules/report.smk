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
        summary=L.table("summary.csv"),
        per_concept=L.table("per_concept.csv"),
        paired=L.table("paired.csv"),
    log:
        L.log("aggregate"),
    benchmark:
        L.benchmark("aggregate")
    params:
        out=output_folder_of,
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
        L.table("claims.csv"),
    log:
        L.log("claims"),
    benchmark:
        L.benchmark("claims")
    params:
        noise=noise_flag_of,
    shell:
        "exec {PY} -m dcobench claims --claims {input.claims} --scores {input.scores} "
        "{params.noise} --out {output} > {log} 2>&1"


rule report:
    input:
        summary=L.table("summary.csv"),
        per_concept=L.table("per_concept.csv"),
        paired=L.table("paired.csv"),
        paper=PAPER_VALUES,
        noise=noise_distance_files(),  # [] when no selected experiment runs the analysis
        cosine=lora_cosine_files(),  # analysis.smk; [] when no experiment asks for lora_cosine
        claims=claims_files(),  # [] when report.claims is null
        logs=train_logs(),
        samples=sample_indexes(),
        prepared=[prepared(n) for n in CONCEPTS],  # reference images beside the grids
    output:
        html=report(
            L.report(),
            caption="../report/report.rst",
            category="Report",
        ),
        paper=L.table("paper_vs_ours.csv"),
        paper_text=[L.table("paper_vs_ours.md"), L.table("paper_vs_ours.tex")],
        experiments=experiment_tables(),  # tables/{experiment}/, written only by the report
        cosine=lora_cosine_tables(),  # [] when no experiment asks for lora_cosine
        figures=directory(L.figures_dir()),
    log:
        L.log("report"),
    benchmark:
        L.benchmark("report")
    params:
        title=shlex.quote(config["report"]["title"]),
        bench=bench_dir(),  # benchmark JSONs (dcobench bench); read when present
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
