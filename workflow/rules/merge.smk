# Merging a subject LoRA with a style LoRA trained by the same method ({method}-{merger}).


rule merge:
    input:
        subject=lambda w: f"{model_dir('subject', w.subject, w.merge.split('-')[0])}/pytorch_lora_weights.safetensors",
        style=lambda w: f"{model_dir('style', w.style, w.merge.split('-')[0])}/pytorch_lora_weights.safetensors",
    output:
        f"{R}/merges/{{subject}}__{{style}}/{{merge}}/lora/pytorch_lora_weights.safetensors",
    log:
        f"{R}/logs/merge/{{subject}}__{{style}}/{{merge}}.log",
    benchmark:
        f"{R}/benchmarks/merge/{{subject}}__{{style}}/{{merge}}.tsv"
    params:
        subject=lambda w, input: input.subject.rsplit("/", 1)[0],
        style=lambda w, input: input.style.rsplit("/", 1)[0],
        merger=lambda w: w.merge.split("-", 1)[1],
        weights=",".join(str(x) for x in config["merge"]["weights"]),
        out=lambda w, output: output[0].rsplit("/", 1)[0],
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{PY} -m dcobench merge --subject-model {params.subject} --style-model {params.style} "
        "--merger {params.merger} --weights {params.weights} --out {params.out} > {log} 2>&1"
