# Scoring: one long table (row per image and metric) per sample folder; the pretrained model's
# and merged LoRAs' samples reuse the rule. Embeddings are cached by (image sha256, scorer
# model) in SCORE_CACHE, shared by all score jobs (race-safe writes).

SCORE_CACHE = shlex.quote(config["score"]["cache_dir"] or L.embedding_cache())


rule score:
    input:
        samples=[L.samples_index("{kind}", "{concept}", "{variant}", g) for g in GUIDES],
        concept=concept_yaml_of,
        models=scorer_jsons_of,
    output:
        [L.scores("{kind}", "{concept}", "{variant}", g) for g in GUIDES],
    log:
        L.log("score", "{kind}", "{concept}", "{variant}"),
    benchmark:
        L.benchmark("score", "{kind}", "{concept}", "{variant}")
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
        samples=[L.samples_index("{kind}", "{concept}", "pretrained", "cfg")],
        concept=concept_yaml_of,
        models=scorer_jsons_of,
    output:
        L.scores("{kind}", "{concept}", "pretrained", "cfg"),
    log:
        L.log("score", "{kind}", "{concept}", "pretrained"),
    benchmark:
        L.benchmark("score", "{kind}", "{concept}", "pretrained")
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
        samples=[L.merge_samples_index("{subject}", "{style}", "{merge}", g) for g in MERGE_GUIDES],
        concepts=pair_yamls_of,
        models=scorer_jsons(config["score"]["metrics"]["merge"]),
    output:
        [L.merge_scores("{subject}", "{style}", "{merge}", g) for g in MERGE_GUIDES],
    log:
        L.log("score_merge", "{subject}__{style}", "{merge}"),
    benchmark:
        L.benchmark("score_merge", "{subject}__{style}", "{merge}")
    params:
        samples=sample_folders,
        out=output_folder_of,
        metrics=",".join(config["score"]["metrics"]["merge"]),
        models=opts(scorer_models(config["score"]["metrics"]["merge"])),
        concepts=pair_flags_of,
        meta=merge_meta_of,


# score.group_size: concept: one `score_group` job per (kind, concept) scores every member of
# the concept's sampling group (sample.smk) with the embedders loaded once; each member's tables
# and manifest are written as its own `score` job writes them, staged under
# scores/{kind}/{concept}/.groups/{group}/{variant}/, and the local `score_member` publishes
# each member's folder (hard links, dcobench.train.variants) where `score` writes it. A changed
# member rescores its concept's group (the others' embeddings come from SCORE_CACHE); a member's
# manifest counts the embedder calls made for it (references embedded once, for the first).
if SCORE_GROUPED:

    localrules:
        score_member,  # links a member's tables into place: no model load
        score_member_pretrained,

    rule score_group:
        input:
            unpack(score_group_inputs),
        output:
            L.score_group_dir("{kind}", "{concept}", "{group}", "done.json"),
        log:
            L.log("score", "{kind}", "{concept}", "{group}"),
        benchmark:
            L.benchmark("score_group", "{kind}", "{concept}", "{group}")
        wildcard_constraints:
            group="[a-z0-9_]+(?:\\+[a-z0-9_]+)*",
        params:
            members=score_members_of,
            metrics=metrics_of,
            models=scorer_models_of,
            concepts=concept_flag_of,
        shell:
            "exec {PY} -m dcobench score --members {params.members} "
            "--metrics {params.metrics} --models {params.models} {params.concepts} "
            "--batch-size {config[score][batch_size]} --cache-dir {SCORE_CACHE} "
            "--done {output} > {log} 2>&1"

    rule score_member:
        input:
            score_group_marker_of,
        output:
            [L.scores("{kind}", "{concept}", "{variant}", g) for g in GUIDES],
        wildcard_constraints:
            variant=variant_regex([v for v in SAMPLED if v != "pretrained"]),
        params:
            staged=score_staged_of,
            out=output_folder_of,
        shell:  # a stdlib-only module: no torch import
            "exec {PY} -m dcobench.train.variants {params.staged} {params.out}"

    use rule score_member as score_member_pretrained with:
        output:
            L.scores("{kind}", "{concept}", "pretrained", "cfg"),
        params:
            staged=score_staged_pretrained_of,
            out=output_folder_of,

    ruleorder: score_member > score
    ruleorder: score_member_pretrained > score_pretrained > score
