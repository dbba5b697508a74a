# Concept folders: draw the demo concepts (embedded default) or the world's (data.world; one
# job per concept, each drawn from its own seed stream), fetch/link source concepts (data.sources), validate each concept, resolve each
# model. One job per concept and per model key: adding, removing or editing a concept (its
# concept.yaml or any file in its folder) reruns that concept's chain only; changing
# models.<key> reruns what uses that model only.


if DEMO:

    rule demo_data:
        output:
            f"{DATA}/{{concept}}/concept.yaml",
        log:
            L.log("demo_data", "{concept}"),
        benchmark:
            L.benchmark("demo_data", "{concept}")
        wildcard_constraints:
            concept=name_regex(DEMO),
        shell:
            "exec {PY} -m dcobench prepare demo --root {DATA} --names {wildcards.concept} > {log} 2>&1"


if WORLD:
    # The files the world's concept folders are drawn from: a change to any of them changes
    # this parameter, so Snakemake redraws the concepts (and reruns what read them) instead of
    # keeping folders drawn by an older generator.
    WORLD_GENERATOR_SHA = file_digest(
        Path(workflow.basedir) / "dcobench" / "world" / f"{m}.py"
        for m in ("concepts", "render", "scenes", "vocab")
    )

    rule world_concepts:
        output:
            f"{DATA}/{{concept}}/concept.yaml",
        log:
            L.log("world_concepts", "{concept}"),
        benchmark:
            L.benchmark("world_concepts", "{concept}")
        wildcard_constraints:
            concept=name_regex(WORLD),
        params:
            seed=config["seed"],
            contexts=config["data"]["world_contexts"],
            generator=WORLD_GENERATOR_SHA,
        shell:
            "exec {PY} -m dcobench world concepts --out {DATA} --names {wildcards.concept} "
            "--seed {params.seed} --contexts {params.contexts} > {log} 2>&1"


if SOURCED:

    rule fetch_concept:
        input:
            source_files_of,
        output:
            L.fetched_concept("{concept}", "concept.yaml"),
        log:
            L.log("fetch", "{concept}"),
        benchmark:
            L.benchmark("fetch", "{concept}")
        wildcard_constraints:
            concept=name_regex(SOURCED),
        params:
            concept=source_concept_of,
            sources=opts(config["data"].get("sources") or {}),
            out=output_folder_of,
        shell:
            "exec {PY} -m dcobench prepare fetch --concept {params.concept} --sources {params.sources} "
            "--out {params.out} > {log} 2>&1"


rule prepare:
    # decodes every image of one concept (what only decoding finds: truncated files, bombs);
    # its messages go to the console as well as the log
    input:
        concept_files_of,
    output:
        prepared("{concept}"),
    log:
        L.log("prepare", "{concept}"),
    benchmark:
        L.benchmark("prepare", "{concept}")
    wildcard_constraints:
        concept=name_regex(CONCEPTS),
    params:
        concept=quoted_concept_dir_of,
        resolution=config["train"]["resolution"],
    shell:
        "{PY} -m dcobench prepare validate --concepts {params.concept} "
        "--resolution {params.resolution} --out {output} 2>&1 | tee {log}"


# Runs on the submit host (the one place with the hub reachable): downloads a hub model's files
# once (fp16 where the hub has them), builds a preset on first use, checks its tokenizer loads.
localrules:
    prepare_model,


rule prepare_model:
    output:
        model_json("{model}"),
    log:
        L.log("prepare_model", "{model}"),
    benchmark:
        L.benchmark("prepare_model", "{model}")
    wildcard_constraints:
        model=name_regex(config["models"]),
    params:
        spec=lambda w: shlex.quote(config["models"][w.model]),
    shell:
        "{PY_ONLINE} -m dcobench prepare model --key {wildcards.model} --spec {params.spec} "
        "--out {output} 2>&1 | tee {log}"
