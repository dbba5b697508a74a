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
        lora=L.model_dir("{kind}", "{concept}", "{variant}", LORA),
        manifest=L.model_dir("{kind}", "{concept}", "{variant}", "manifest.json"),
        concept=concept_yaml_of,
    output:
        L.sample_chunks("{kind}", "{concept}", "{variant}", chunk_file("{chunk}")),
    log:
        L.log("sample", "{kind}", "{concept}", "{variant}", "{chunk}"),
    benchmark:
        L.benchmark("sample", "{kind}", "{concept}", "{variant}", "{chunk}")
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
        lora=L.model_dir("{kind}", "{concept}", "{variant}", LORA),
        chunks=sample_chunks_of,
    output:
        [L.samples_index("{kind}", "{concept}", "{variant}", g) for g in GUIDES],
    log:
        L.log("sample_join", "{kind}", "{concept}", "{variant}"),
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
        L.sample_chunks("{kind}", "{concept}", "pretrained", chunk_file("{chunk}")),
    log:
        L.log("sample", "{kind}", "{concept}", "pretrained", "{chunk}"),
    benchmark:
        L.benchmark("sample", "{kind}", "{concept}", "pretrained", "{chunk}")
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
        L.samples_index("{kind}", "{concept}", "pretrained", "cfg"),
    log:
        L.log("sample_join", "{kind}", "{concept}", "pretrained"),
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
        lora=L.merge_dir("{subject}", "{style}", "{merge}", "lora", LORA),
        concepts=pair_yamls_of,
    output:
        L.merge_chunks("{subject}", "{style}", "{merge}", chunk_file("{chunk}")),
    log:
        L.log("sample_merge", "{subject}__{style}", "{merge}", "{chunk}"),
    benchmark:
        L.benchmark("sample_merge", "{subject}__{style}", "{merge}", "{chunk}")
    params:
        model=model_flag_of,
        concepts=pair_flags_of,
        out=merge_samples_dir_of,
        options=opts(dcfg.sample_options(config, MERGE_GUIDES, "merge")),
        base=job_model("base"),


use rule sample_join as sample_join_merge with:
    input:
        lora=L.merge_dir("{subject}", "{style}", "{merge}", "lora", LORA),
        chunks=merge_chunks_of,
    output:
        [L.merge_samples_index("{subject}", "{style}", "{merge}", g) for g in MERGE_GUIDES],
    log:
        L.log("sample_join", "{subject}__{style}", "{merge}"),
    params:
        model=model_flag_of,
        concepts=pair_flags_of,
        out=merge_samples_dir_of,
        options=opts(dcfg.sample_options(config, MERGE_GUIDES, "merge")),
        base=job_model("base"),


# sample.group_size: concept: one `sample_group` job per (kind, concept, chunk) samples every
# model of the concept (its sampled variants, and the pretrained model, CFG only, where the
# experiments sample it) with the base pipeline loaded once (dcobench/sample/group.py: each
# member's LoRA and learned token are put on, sampled, taken off; the base is checked restored).
# It writes each member's images into the member's own folders and a marker under
# chunks/samples/{kind}/{concept}/.groups/{group}/; the local `sample_member` then writes each
# member's chunk marker, so sample_join and everything downstream are as with group_size 1.
# A group is named by its members ("db+dbpp+dco+pretrained"): adding a concept adds only its own
# jobs; adding a variant, or retraining one member, reruns its concept's group job, which skips
# the images already written (as a rerun of `sample` does) and rewrites every member's marker.
# Merged LoRAs are sampled per model (sample_merge). config/paper.yaml keeps 1: a group's chunk
# would run as long as all its members' chunks together (`dcobench estimate` counts it so).
if SAMPLE_GROUPED:

    localrules:
        sample_member,  # the member's chunk marker: no model load

    rule sample_group:
        input:
            unpack(sample_group_inputs),
        output:
            L.sample_group_chunks("{kind}", "{concept}", "{group}", chunk_file("{chunk}")),
        log:
            L.log("sample", "{kind}", "{concept}", "{group}", "{chunk}"),
        benchmark:
            L.benchmark("sample_group", "{kind}", "{concept}", "{group}", "{chunk}")
        wildcard_constraints:
            group="[a-z0-9_]+(?:\\+[a-z0-9_]+)*",
        params:
            members=sample_members_of,
            concepts=concept_flag_of,
            base=job_model("base"),
        shell:
            "exec {PY} -m dcobench sample --members {params.members} {params.concepts} "
            "--base-model {params.base} --chunk {wildcards.chunk} --done {output} > {log} 2>&1"

    rule sample_member:
        input:
            sample_group_marker_of,
        output:
            L.sample_chunks("{kind}", "{concept}", "{variant}", chunk_file("{chunk}")),
        wildcard_constraints:
            variant=variant_regex(SAMPLED),
        shell:  # the marker `sample --chunk --done` writes: the chunk's name
            "printf '%s\\n' {wildcards.chunk} > {output}"

    ruleorder: sample_member > sample_pretrained > sample
