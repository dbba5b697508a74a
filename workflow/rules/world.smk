# The procedural world (dcobench.world): pretrain its presets, write its concepts and figures.
# Not part of `rule all`: the committed weights in resources/world are the default; run
# `snakemake --cores 2 world_build` to rebuild them into results/world/presets
# (seconds per phase of the committed build: resources/world/manifest.json; see docs/world.md).


rule world_build:
    output:
        "results/world/presets/manifest.json",
        "results/world/presets/gates.json",
    log:
        "results/world/logs/world_build.log",
    benchmark:
        "results/world/benchmarks/world_build.tsv"
    threads: 1
    params:
        out=output_folder_of,
    shell:
        "exec {PY} -m dcobench world build --out {params.out} --work results/world/build "
        "--threads {threads} > {log} 2>&1"


rule world_figures:
    input:
        "results/world/presets/manifest.json",
    output:
        "results/world/figures/pretrained_grid.png",
        "results/world/figures/subjects.png",
        "results/world/figures/styles.png",
    log:
        "results/world/logs/world_figures.log",
    params:
        world=input_folder_of,
        out=output_folder_of,
    shell:
        "exec {PY} -m dcobench world figure --world {params.world} --out {params.out} > {log} 2>&1"
