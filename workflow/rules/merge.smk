# Merging a subject LoRA with a style LoRA trained by the same variant. Merge folders are named
# {variant}-{merger}[_w{λ1}_{λ2}] (dcobench.merge.ids); merge.weights' λ grid is in the plan.


rule merge:
    input:
        unpack(merge_loras),
        concepts=pair_yamls_of,
    output:
        L.merge_dir("{subject}", "{style}", "{merge}", "lora", LORA),
    log:
        L.log("merge", "{subject}__{style}", "{merge}"),
    benchmark:
        L.benchmark("merge", "{subject}__{style}", "{merge}")
    params:
        subject=subject_model_of,
        style=style_model_of,
        concepts=pair_flags_of,
        merger=merger_of,
        weights=merge_weights_of,
        options=opts(merge_options()),
        base=job_model("base"),
        out=output_folder_of,
    shell:
        "exec {PY} -m dcobench merge --subject-model {params.subject} --style-model {params.style} "
        "{params.concepts} --merger {params.merger} --weights {params.weights} "
        "--base-model {params.base} --options {params.options} --out {params.out} > {log} 2>&1"
