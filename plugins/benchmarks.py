"""The standard benchmarks, each matching the lm-evaluation-harness 0.4.x task of the same name.

Dataset, split, prompt, choices and target follow lm-eval's task YAML (lm_eval/tasks/<task>/...);
`question_template` is drtframe's addition, used only for the non-native format. The perplexity
benchmarks follow lm-eval's wikitext and lambada_openai tasks, and wikitext2_ppl the layer-pruning
papers' WikiText-2 protocol (docs/perplexity.md).
"""

from __future__ import annotations

import re

from drtframe import (Benchmark, ChunkedBenchmark, ContinuationBenchmark, RollingBenchmark, TemplateBenchmark,
                      hookimpl)


class ArcEasy(TemplateBenchmark):
    """ARC-Easy, test split (lm-eval task arc_easy, tasks/arc/arc_easy.yaml)."""

    name = "arc_easy"
    dataset_path, dataset_name, split = "allenai/ai2_arc", "ARC-Easy", "test"
    text_template = "Question: {{question}}\nAnswer:"
    choice_template = "{{choices.text}}"
    target_template = "{{choices.label.index(answerKey)}}"
    question_template = "{{question}}"


class ArcChallenge(ArcEasy):
    """ARC-Challenge, test split (lm-eval task arc_challenge, tasks/arc/arc_challenge.yaml)."""

    name = "arc_challenge"
    dataset_name = "ARC-Challenge"


class Piqa(TemplateBenchmark):
    """PIQA, validation split (lm-eval task piqa, tasks/piqa/piqa.yaml)."""

    name = "piqa"
    dataset_path, split = "baber/piqa", "validation"
    text_template = "Question: {{goal}}\nAnswer:"
    choice_template = "{{[sol1, sol2]}}"
    target_template = "label"
    question_template = "{{goal}}"


class OpenBookQA(TemplateBenchmark):
    """OpenBookQA main, test split (lm-eval task openbookqa, tasks/openbookqa/openbookqa.yaml)."""

    name = "openbookqa"
    dataset_path, dataset_name, split = "allenai/openbookqa", "main", "test"
    text_template = "question_stem"
    choice_template = "{{choices.text}}"
    target_template = "{{choices.label.index(answerKey.lstrip())}}"
    question_template = "{{question_stem}}"


class SciQ(TemplateBenchmark):
    """SciQ, test split (lm-eval task sciq, tasks/sciq/sciq.yaml)."""

    name = "sciq"
    dataset_path, split = "allenai/sciq", "test"
    text_template = "{{support.lstrip()}}\nQuestion: {{question}}\nAnswer:"
    choice_template = "{{[distractor1, distractor2, distractor3, correct_answer]}}"
    target_template = 3
    question_template = "{{support.lstrip()}}\n{{question}}"


class BoolQ(TemplateBenchmark):
    """BoolQ (SuperGLUE), validation split (lm-eval task boolq, tasks/super_glue/boolq/default.yaml)."""

    name = "boolq"
    dataset_path, dataset_name, split = "aps/super_glue", "boolq", "validation"
    text_template = "{{passage}}\nQuestion: {{question}}?\nAnswer:"
    choice_template = ["no", "yes"]
    target_template = "label"
    question_template = "{{passage}}\n{{question}}?"


def _clean_hellaswag(text: str) -> str:
    """lm-eval's hellaswag `preprocess`: strip WikiHow bracket artifacts and double spaces."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


class HellaSwag(TemplateBenchmark):
    """HellaSwag, validation split (lm-eval task hellaswag, tasks/hellaswag/{hellaswag.yaml,utils.py})."""

    name = "hellaswag"
    dataset_path, split = "Rowan/hellaswag", "validation"
    text_template = "{{query}}"
    choice_template = "choices"
    target_template = "{{label}}"
    question_template = "{{query}}"

    def process_docs(self, docs):
        return [{**doc,
                 "query": _clean_hellaswag(doc["activity_label"] + ": " + doc["ctx_a"] + " " + doc["ctx_b"].capitalize()),
                 "choices": [_clean_hellaswag(e) for e in doc["endings"]],
                 "gold": int(doc["label"])} for doc in docs]


class Winogrande(Benchmark):
    """WinoGrande xl, validation split, partial evaluation (lm-eval task winogrande, tasks/winogrande)."""

    name = "winogrande"
    dataset_path, dataset_name, split = "allenai/winogrande", "winogrande_xl", "validation"

    def doc_to_text(self, doc):
        return {"1": 0, "2": 1}[doc["answer"]]

    def doc_to_choice(self, doc):
        blank = doc["sentence"].index("_")
        return [doc["sentence"][:blank] + option for option in (doc["option1"], doc["option2"])]

    def doc_to_target(self, doc):
        return doc["sentence"][doc["sentence"].index("_") + 1:].strip()

    def question(self, doc):
        return doc["sentence"]

    def option_texts(self, doc):
        return [doc["option1"], doc["option2"]]


# lm-eval 0.4.x tasks/mmlu/default: subject -> category (the tag of each subject's YAML)
MMLU_SUBJECTS = {
    "stem": "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
            "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
            "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
            "high_school_mathematics high_school_physics high_school_statistics machine_learning",
    "other": "business_ethics clinical_knowledge college_medicine global_facts human_aging management marketing "
             "medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology",
    "social_sciences": "econometrics high_school_geography high_school_government_and_politics "
                       "high_school_macroeconomics high_school_microeconomics high_school_psychology "
                       "human_sexuality professional_psychology public_relations security_studies sociology "
                       "us_foreign_policy",
    "humanities": "formal_logic high_school_european_history high_school_us_history high_school_world_history "
                  "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
                  "prehistory professional_law world_religions",
}
CATEGORY = {subject: cat for cat, names in MMLU_SUBJECTS.items() for subject in names.split()}


class MMLUSubject(TemplateBenchmark):
    """Base of the 57 MMLU subjects (lm-eval tasks/mmlu/default/_default_template_yaml), letter format."""

    dataset_path, split = "cais/mmlu", "test"
    native_format = "letter"
    text_template = ("{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
                     "D. {{choices[3]}}\nAnswer:")
    choice_template = ["A", "B", "C", "D"]
    target_template = "answer"
    question_template = "{{question.strip()}}"
    category: str

    def option_texts(self, doc):
        return list(doc["choices"])


def _subject(subject: str) -> type[MMLUSubject]:
    label = subject.replace("_", " ")
    return type(f"MMLU_{subject}", (MMLUSubject,), {
        "__doc__": f"MMLU {label}, test split (lm-eval task mmlu_{subject}).",
        "name": f"mmlu_{subject}", "dataset_name": subject, "category": CATEGORY[subject],
        "prompt_prefix": f"The following are multiple choice questions (with answers) about {label}.\n\n",
    })


SUBJECT_BENCHMARKS = [_subject(s) for s in sorted(CATEGORY)]


class MMLU(Benchmark):
    """MMLU, all 57 subjects, weighted by size over the subjects (overall and per category), as lm-eval."""

    name = "mmlu"
    split = "test"
    native_format = "letter"

    def members(self):
        members = [cls(self.options) for cls in SUBJECT_BENCHMARKS]
        if "split" in vars(self):  # a --split override reaches every subject
            for member in members:
                member.split = self.split
        return members


# lm-eval's `wikitext_detokenizer` (tasks/wikitext/preprocess_wikitext.py) as its steps, in its order:
# WikiText's spaced tokens (" @-@ ", " , ", "( x )", "= = Section = =") back to plain text
_WIKITEXT_STEPS = (
    ("s '", "s'"), (re.compile(r"/' [0-9]/"), r"/'[0-9]/"),
    (" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."),
    (" : ", ": "), (" ; ", "; "), (" . ", ". "), (" ! ", "! "), (" ? ", "? "), (" , ", ", "),
    (re.compile(r"\(\s*([^\)]*?)\s*\)"), r"(\1)"), (re.compile(r"\[\s*([^\]]*?)\s*\]"), r"[\1]"),
    (re.compile(r"{\s*([^}]*?)\s*}"), r"{\1}"), (re.compile(r"\"\s*([^\"]*?)\s*\""), r'"\1"'),
    (re.compile(r"'\s*([^']*?)\s*'"), r"'\1'"),
    ("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \N{DEGREE SIGN} ", "\N{DEGREE SIGN}"),
    (" \n", "\n"), ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s"),
)


def _detokenize_wikitext(text: str) -> str:
    for old, new in _WIKITEXT_STEPS:
        text = old.sub(new, text) if isinstance(old, re.Pattern) else text.replace(old, new)
    return text


class WikiText(RollingBenchmark):
    """WikiText-2 document perplexity, test split (lm-eval task wikitext, tasks/wikitext)."""

    name = "wikitext"
    dataset_path, dataset_name, split = "EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test"

    def doc_to_target(self, doc):
        return _detokenize_wikitext(doc["page"])

    def counted_text(self, doc):
        return doc["page"]  # lm-eval counts words and bytes before detokenizing


class WikiText2Perplexity(ChunkedBenchmark):
    """WikiText-2 token perplexity in chunks of --seq-len tokens, test split (SLEB/SparseGPT protocol)."""

    name = "wikitext2_ppl"
    dataset_path, dataset_name, split = "Salesforce/wikitext", "wikitext-2-raw-v1", "test"


class LambadaOpenAI(ContinuationBenchmark):
    """LAMBADA (OpenAI's version): the last word of each passage, test split (lm-eval task lambada_openai)."""

    name = "lambada_openai"
    dataset_path, dataset_name, split = "EleutherAI/lambada_openai", "default", "test"
    text_template = "{{text.split(' ')[:-1]|join(' ')}}"
    target_template = "{{' '+text.split(' ')[-1]}}"


@hookimpl
def drtframe_register_benchmarks(register):
    for cls in (ArcEasy, ArcChallenge, Piqa, OpenBookQA, SciQ, BoolQ, HellaSwag, Winogrande, MMLU,
                *SUBJECT_BENCHMARKS, WikiText, WikiText2Perplexity, LambadaOpenAI):
        register(cls)
