# Merging a subject LoRA with a style LoRA trained by the same variant. Merge folders are named
# {variant}-{merger}[_w{λ1}_{λ2}] (dcobench.merge.ids); merge.weights' λ grid is in the plan.
from dcobench.merge.ids import parse_merge_id


def merge_loras(w):
    """The subject's and the style's LoRA of the merge's variant."""
    variant = parse_merge_id(w.merge)[0]
    return {
        "subject": f"{model_dir('subject', w.subject, variant)}/{LORA}",
        "style": f"{model_dir('style', w.style, variant)}/{LORA}",
    }


def merge_weights_of(w):
    return ",".join(str(x) for x in parse_merge_id(w.merge)[2])


def merge_options():
    m = config["merge"]
    return {k: m[k] for k in ("rank", "density", "ziplora") if k in m} | {"seed": config["seed"]}


rule merge:
    input:
        unpack(merge_loras),
        concepts=pair_yamls_of,
    output:
        f"{R}/merges/{{subject}}__{{style}}/{{merge}}/lora/{LORA}",
    log:
        f"{R}/logs/merge/{{subject}}__{{style}}/{{merge}}.log",
    benchmark:
        f"{R}/benchmarks/merge/{{subject}}__{{style}}/{{merge}}.tsv"
    params:
        subject=lambda w, input: folder(input.subject),
        style=lambda w, input: folder(input.style),
        concepts=pair_flags_of,
        merger=lambda w: parse_merge_id(w.merge)[1],
        weights=merge_weights_of,
        options=opts(merge_options()),
        base=config["models"]["base"],
        out=lambda w, output: folder(output[0]),
    shell:
        "exec {PY} -m dcobench merge --subject-model {params.subject} --style-model {params.style} "
        "{params.concepts} --merger {params.merger} --weights {params.weights} "
        "--base-model {params.base} --options {params.options} --out {params.out} > {log} 2>&1"
