# Aggregation (store long, render late) and the report.


# Cheap CPU-only steps: run on the submitting host, never through a cluster executor.
localrules:
    aggregate,
    report,


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
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "exec {PY} -m dcobench aggregate --scores {input} --out-dir {params.out} > {log} 2>&1"


rule report:
    input:
        summary=f"{R}/tables/summary.csv",
        paired=f"{R}/tables/paired.csv",
        noise=noise_distance_files(),  # [] when no selected experiment runs the analysis
        cosine=lora_cosine_files(),  # analysis.smk; [] when no experiment asks for lora_cosine
        logs=[f"{model_dir(k, c, m)}/train_log.csv" for k, c, m in trained_models()],
    output:
        html=report(
            f"{R}/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
        tables=[f"{R}/tables/methods_{g}.md" for g in report_groups()],
    log:
        f"{R}/logs/report.log",
    benchmark:
        f"{R}/benchmarks/report.tsv"
    params:
        title=shlex.quote(config["report"]["title"]),
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "exec {PY} -m dcobench report --exp-dir {R} --title {params.title} --out {output.html} "
        "> {log} 2>&1"
