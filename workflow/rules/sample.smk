# Sampling: each trained model over the guidance grid (cfg, rg<ω>) × prompts × seeds; the
# pretrained model (CFG only, Fig 1's point) and merged LoRAs reuse the rules.
# A model's grid is split into config sample.chunks[group] jobs (contiguous prompt blocks, one
# SLURM job each, sized to fit the time limit); they write into the same folders (resumable:
# written images are skipped) and touch a marker under {R}/chunks/; the join (a local rule)
# checks every image and writes each guide's index.csv, which score reads.
# `exec`: python replaces the job's bash, so SIGTERM (SLURM preemption / --signal) reaches it and
# the job step lasts until it has flushed its images (see slurm/README.md).


localrules:
    sample_join,
    sample_join_pretrained,
    sample_join_merge,


rule sample:
    input:
        lora=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/{LORA}",
        manifest=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/manifest.json",
        concept=concept_yaml_of,
    output:
        f"{R}/chunks/samples/{{kind}}/{{concept}}/{{variant}}/{{chunk}}.done",
    log:
        f"{R}/logs/sample/{{kind}}/{{concept}}/{{variant}}/{{chunk}}.log",
    benchmark:
        f"{R}/benchmarks/sample/{{kind}}/{{concept}}/{{variant}}/{{chunk}}.tsv"
    params:
        model=model_flag_of,
        concepts=concept_flag_of,
        out=sample_dir_of,
        options=lambda w: opts(dcfg.sample_options(config, GUIDES, w.kind)),  # own sets only
        base=job_model("base"),
    shell:
        "exec {PY} -m dcobench sample {params.model} {params.concepts} --out {params.out} "
        "--base-model {params.base} --options {params.options} --chunk {wildcards.chunk} "
        "--done {output} > {log} 2>&1"


rule sample_join:
    input:
        lora=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/{LORA}",
        chunks=sample_chunks_of,
    output:
        [f"{R}/samples/{{kind}}/{{concept}}/{{variant}}/{g}/index.csv" for g in GUIDES],
    log:
        f"{R}/logs/sample_join/{{kind}}/{{concept}}/{{variant}}.log",
    params:
        model=model_flag_of,
        concepts=concept_flag_of,
        out=sample_dir_of,
        options=lambda w: opts(dcfg.sample_options(config, GUIDES, w.kind)),  # own sets only
        base=job_model("base"),
    shell:
        "exec {PY} -m dcobench sample {params.model} {params.concepts} --out {params.out} "
        "--base-model {params.base} --options {params.options} --join > {log} 2>&1"


use rule sample as sample_pretrained with:
    input:
        concept=concept_yaml_of,
        prepared=prepared_of,
        base=model_json("base"),
    output:
        f"{R}/chunks/samples/{{kind}}/{{concept}}/pretrained/{{chunk}}.done",
    log:
        f"{R}/logs/sample/{{kind}}/{{concept}}/pretrained/{{chunk}}.log",
    benchmark:
        f"{R}/benchmarks/sample/{{kind}}/{{concept}}/pretrained/{{chunk}}.tsv"
    params:
        model="",  # no LoRA: the pretrained model
        concepts=concept_flag_of,
        out=pretrained_dir_of,
        options=lambda w: opts(dcfg.sample_options(config, ["cfg"], w.kind)),
        base=job_model("base"),


use rule sample_join as sample_join_pretrained with:
    input:
        chunks=pretrained_chunks_of,
    output:
        f"{R}/samples/{{kind}}/{{concept}}/pretrained/cfg/index.csv",
    log:
        f"{R}/logs/sample_join/{{kind}}/{{concept}}/pretrained.log",
    params:
        model="",
        concepts=concept_flag_of,
        out=pretrained_dir_of,
        options=lambda w: opts(dcfg.sample_options(config, ["cfg"], w.kind)),
        base=job_model("base"),


ruleorder: sample_pretrained > sample
ruleorder: sample_join_pretrained > sample_join


use rule sample as sample_merge with:
    input:
        lora=f"{R}/merges/{{subject}}__{{style}}/{{merge}}/lora/{LORA}",
        concepts=pair_yamls_of,
    output:
        f"{R}/chunks/merges/{{subject}}__{{style}}/{{merge}}/{{chunk}}.done",
    log:
        f"{R}/logs/sample_merge/{{subject}}__{{style}}/{{merge}}/{{chunk}}.log",
    benchmark:
        f"{R}/benchmarks/sample_merge/{{subject}}__{{style}}/{{merge}}/{{chunk}}.tsv"
    params:
        model=model_flag_of,
        concepts=pair_flags_of,
        out=merge_samples_dir_of,
        options=opts(dcfg.sample_options(config, MERGE_GUIDES, "merge")),
        base=job_model("base"),


use rule sample_join as sample_join_merge with:
    input:
        lora=f"{R}/merges/{{subject}}__{{style}}/{{merge}}/lora/{LORA}",
        chunks=merge_chunks_of,
    output:
        [f"{R}/merges/{{subject}}__{{style}}/{{merge}}/samples/{g}/index.csv" for g in MERGE_GUIDES],
    log:
        f"{R}/logs/sample_join/{{subject}}__{{style}}/{{merge}}.log",
    params:
        model=model_flag_of,
        concepts=pair_flags_of,
        out=merge_samples_dir_of,
        options=opts(dcfg.sample_options(config, MERGE_GUIDES, "merge")),
        base=job_model("base"),
