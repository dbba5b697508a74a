# Sampling: each trained model over the guidance grid (cfg, rg<ω>) × prompts × seeds; the
# pretrained model (CFG only, Fig 1's point) and merged LoRAs reuse the rule.
# `exec`: python replaces the job's bash, so SIGTERM (SLURM preemption / --signal) reaches it and
# the job step lasts until it has flushed its images (see slurm/README.md).


rule sample:
    input:
        lora=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/{LORA}",
        manifest=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/manifest.json",
        concept=concept_yaml_of,
    output:
        [f"{R}/samples/{{kind}}/{{concept}}/{{variant}}/{g}/index.csv" for g in GUIDES],
    log:
        f"{R}/logs/sample/{{kind}}/{{concept}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/sample/{{kind}}/{{concept}}/{{variant}}.tsv"
    params:
        model=model_flag_of,
        concepts=concept_flag_of,
        out=sample_root_of,
        options=opts(dcfg.sample_options(config, GUIDES)),
        base=job_model("base"),
    shell:
        "exec {PY} -m dcobench sample {params.model} {params.concepts} --out {params.out} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


use rule sample as sample_pretrained with:
    input:
        concept=concept_yaml_of,
        prepared=prepared_of,
        base=model_json("base"),
    output:
        f"{R}/samples/{{kind}}/{{concept}}/pretrained/cfg/index.csv",
    log:
        f"{R}/logs/sample/{{kind}}/{{concept}}/pretrained.log",
    benchmark:
        f"{R}/benchmarks/sample/{{kind}}/{{concept}}/pretrained.tsv"
    params:
        model="",  # no LoRA: the pretrained model
        concepts=concept_flag_of,
        out=sample_root_of,
        options=opts(dcfg.sample_options(config, ["cfg"])),
        base=job_model("base"),


ruleorder: sample_pretrained > sample


use rule sample as sample_merge with:
    input:
        lora=f"{R}/merges/{{subject}}__{{style}}/{{merge}}/lora/{LORA}",
        concepts=pair_yamls_of,
    output:
        [f"{R}/merges/{{subject}}__{{style}}/{{merge}}/samples/{g}/index.csv" for g in MERGE_GUIDES],
    log:
        f"{R}/logs/sample_merge/{{subject}}__{{style}}/{{merge}}.log",
    benchmark:
        f"{R}/benchmarks/sample_merge/{{subject}}__{{style}}/{{merge}}.tsv"
    params:
        model=model_flag_of,
        concepts=pair_flags_of,
        out=sample_root_of,
        options=opts(dcfg.sample_options(config, MERGE_GUIDES)),
        base=job_model("base"),
