# Concept folders: draw the demo concepts (embedded default) or the world's (data.world),
# fetch/link source concepts (data.sources), validate every concept, build presets.


if DEMO:

    rule demo_data:
        output:
            [concept_yaml(n) for n in DEMO],
        log:
            f"{R}/logs/demo_data.log",
        benchmark:
            f"{R}/benchmarks/demo_data.tsv"
        params:
            names=",".join(DEMO),
        shell:
            "exec {PY} -m dcobench prepare demo --root {DATA} --names {params.names} > {log} 2>&1"


if WORLD:

    rule world_concepts:
        output:
            [concept_yaml(n) for n in WORLD],
        log:
            f"{R}/logs/world_concepts.log",
        benchmark:
            f"{R}/benchmarks/world_concepts.tsv"
        params:
            seed=config["seed"],
        shell:
            "exec {PY} -m dcobench world concepts --out {DATA} --seed {params.seed} > {log} 2>&1"


if SOURCED:

    rule fetch_concept:
        input:
            lambda w: f"{CONCEPTS[w.concept].path}/concept.yaml",
        output:
            f"{R}/data/concepts/{{concept}}/concept.yaml",
        log:
            f"{R}/logs/fetch/{{concept}}.log",
        benchmark:
            f"{R}/benchmarks/fetch/{{concept}}.tsv"
        wildcard_constraints:
            concept="|".join(SOURCED),
        params:
            concept=lambda w: shlex.quote(str(CONCEPTS[w.concept].path)),
            sources=opts(config["data"].get("sources") or {}),
            out=lambda w, output: output[0].rsplit("/", 1)[0],
        shell:
            "exec {PY} -m dcobench prepare fetch --concept {params.concept} --sources {params.sources} "
            "--out {params.out} > {log} 2>&1"


rule prepare:
    input:
        [concept_yaml(n) for n in CONCEPTS],
    output:
        f"{R}/data/prepared.json",
    log:
        f"{R}/logs/prepare.log",
    benchmark:
        f"{R}/benchmarks/prepare.tsv"
    params:
        concepts=" ".join(concept_dir(n) for n in CONCEPTS),
        models=opts(config["models"]),
        resolution=config["train"]["resolution"],
    shell:
        "{PY} -m dcobench prepare validate --concepts {params.concepts} "
        "--resolution {params.resolution} --models {params.models} --out {output} 2>&1 | tee {log}"
