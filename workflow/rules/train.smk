# Class priors (DB + p.p.) and LoRA training; checkpoint variants (e.g. db_es) are exported from
# their parent run's kept checkpoint, not retrained.
#
# train.group_size 1: one `train` job per (kind, concept, variant), writing the model folder.
# train.group_size N or "concept": one `train` job per group of a concept's trained variants
# (fused training, dcobench/train/group.py: one process, every row routed to its own LoRA and
# token), writing the members' folders under models/{kind}/{concept}/.groups/{group}/ and a
# done.json marker; the local rule `train_member` then publishes each member's folder (hard
# links) at models/{kind}/{concept}/{variant}, where every downstream rule reads it. A group is
# named by its members ("db+dbpp+dco"); adding a concept adds only its own groups, changing one
# member's options retrains its group. A member whose loss turns non-finite fails the group job
# (its log names the member); the finished members' folders are written and a rerun skips them.
# Model folders are update(): Snakemake keeps the previous model until the job succeeds (the
# trainer builds the new folder aside and swaps it in), and restores it if the job fails.


rule priors:
    input:
        model_json("base"),
    output:
        L.prior_dir("{prior}", "index.csv"),
    log:
        L.log("priors", "{prior}"),
    benchmark:
        L.benchmark("priors", "{prior}")
    params:
        noun=prior_noun_of,
        options=prior_options_of,
        base=job_model("base"),
        out=output_folder_of,
    shell:
        "exec {PY} -m dcobench priors --class-noun {params.noun} --out {params.out} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


if GROUPED:

    localrules:
        train_member,  # links a finished member's folder into place: no GPU, no model load

    rule train:
        input:
            unpack(train_group_inputs),
        output:
            L.group_dir("{kind}", "{concept}", "{group}", "done.json"),
        log:
            L.log("train", "{kind}", "{concept}", "{group}"),
        benchmark:
            L.benchmark("train", "{kind}", "{concept}", "{group}")
        wildcard_constraints:
            group="[a-z0-9_]+(?:\\+[a-z0-9_]+)*",
        params:
            concept=concept_dir_of,
            members=train_members_of,
            base=job_model("base"),
        shell:
            "exec {PY} -m dcobench train --concept {params.concept} --base-model {params.base} "
            "--members {params.members} --done {output} > {log} 2>&1"

    rule train_member:
        input:
            group_marker_of,
        output:
            lora=update(L.model_dir("{kind}", "{concept}", "{variant}", LORA)),
            log_csv=update(L.model_dir("{kind}", "{concept}", "{variant}", "train_log.csv")),
            manifest=update(L.model_dir("{kind}", "{concept}", "{variant}", "manifest.json")),
        wildcard_constraints:
            variant=variant_regex(TRAINED),
        params:
            staged=staged_dir_of,
            out=model_dir_of,
        shell:  # a stdlib-only module: no torch import, no Snakefile re-parse (a run: block's cost)
            "exec {PY} -m dcobench.train.variants {params.staged} {params.out}"

else:

    rule train:
        input:
            unpack(train_inputs),
        output:
            lora=update(L.model_dir("{kind}", "{concept}", "{variant}", LORA)),
            log_csv=update(L.model_dir("{kind}", "{concept}", "{variant}", "train_log.csv")),
            manifest=update(L.model_dir("{kind}", "{concept}", "{variant}", "manifest.json")),
        log:
            L.log("train", "{kind}", "{concept}", "{variant}"),
        benchmark:
            L.benchmark("train", "{kind}", "{concept}", "{variant}")
        wildcard_constraints:
            variant=variant_regex(TRAINED),
        params:
            concept=concept_dir_of,
            out=model_dir_of,
            objective=objective_of,
            prior=prior_flag_of,
            options=train_options_of,
            base=job_model("base"),
        shell:
            "exec {PY} -m dcobench train --concept {params.concept} --objective {params.objective} "
            "--out {params.out} --base-model {params.base} {params.prior} "
            "--options {params.options} > {log} 2>&1"


if EXPORTED:

    rule export_checkpoint:
        input:
            parent_manifest_of,
        output:
            lora=L.model_dir("{kind}", "{concept}", "{variant}", LORA),
            log_csv=L.model_dir("{kind}", "{concept}", "{variant}", "train_log.csv"),
            manifest=L.model_dir("{kind}", "{concept}", "{variant}", "manifest.json"),
        log:
            L.log("train", "{kind}", "{concept}", "{variant}"),
        benchmark:
            L.benchmark("export_checkpoint", "{kind}", "{concept}", "{variant}")
        wildcard_constraints:
            variant=variant_regex(EXPORTED),  # checkpoint variants: no retraining
        params:
            parent=input_folder_of,
            step=checkpoint_step_of,
            out=model_dir_of,
        shell:
            "exec {PY} -m dcobench prepare checkpoint --parent {params.parent} --step {params.step} "
            "--variant {wildcards.variant} --out {params.out} > {log} 2>&1"
