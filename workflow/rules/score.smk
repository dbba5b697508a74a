# Scoring: one long table (row per image and metric) per sample folder; the pretrained model's
# and merged LoRAs' samples reuse the rule. Embeddings are cached by (image sha256, scorer
# model) in SCORE_CACHE, shared by all score jobs (race-safe writes).

SCORE_CACHE = shlex.quote(config["score"]["cache_dir"] or f"{R}/cache/embeddings")


rule score:
    input:
        samples=[f"{R}/samples/{{kind}}/{{concept}}/{{variant}}/{g}/index.csv" for g in GUIDES],
        concept=concept_yaml_of,
        models=scorer_jsons_of,
    output:
        [f"{R}/scores/{{kind}}/{{concept}}/{{variant}}/{g}.csv" for g in GUIDES],
    log:
        f"{R}/logs/score/{{kind}}/{{concept}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{kind}}/{{concept}}/{{variant}}.tsv"
    params:
        samples=sample_folders,
        out=output_folder_of,
        metrics=metrics_of,
        models=scorer_models_of,
        concepts=concept_flag_of,
        meta=score_meta_of,
    shell:
        "exec {PY} -m dcobench score --samples {params.samples} --out-dir {params.out} "
        "--metrics {params.metrics} --models {params.models} {params.concepts} "
        "--meta {params.meta} --batch-size {config[score][batch_size]} "
        "--cache-dir {SCORE_CACHE} > {log} 2>&1"


use rule score as score_pretrained with:
    # the pretrained model's CFG samples (variant "pretrained"), scored like a fine-tuned model's
    input:
        samples=[f"{R}/samples/{{kind}}/{{concept}}/pretrained/cfg/index.csv"],
        concept=concept_yaml_of,
        models=scorer_jsons_of,
    output:
        f"{R}/scores/{{kind}}/{{concept}}/pretrained/cfg.csv",
    log:
        f"{R}/logs/score/{{kind}}/{{concept}}/pretrained.log",
    benchmark:
        f"{R}/benchmarks/score/{{kind}}/{{concept}}/pretrained.tsv"
    params:
        samples=sample_folders,
        out=output_folder_of,
        metrics=metrics_of,
        models=scorer_models_of,
        concepts=concept_flag_of,
        meta=pretrained_meta_of,


ruleorder: score_pretrained > score


use rule score as score_merge with:
    input:
        samples=[f"{R}/merges/{{subject}}__{{style}}/{{merge}}/samples/{g}/index.csv" for g in MERGE_GUIDES],
        concepts=pair_yamls_of,
        models=scorer_jsons(config["score"]["metrics"]["merge"]),
    output:
        [f"{R}/merges/{{subject}}__{{style}}/{{merge}}/scores/{g}.csv" for g in MERGE_GUIDES],
    log:
        f"{R}/logs/score_merge/{{subject}}__{{style}}/{{merge}}.log",
    benchmark:
        f"{R}/benchmarks/score_merge/{{subject}}__{{style}}/{{merge}}.tsv"
    params:
        samples=sample_folders,
        out=output_folder_of,
        metrics=",".join(config["score"]["metrics"]["merge"]),
        models=opts(scorer_models(config["score"]["metrics"]["merge"])),
        concepts=pair_flags_of,
        meta=merge_meta_of,
