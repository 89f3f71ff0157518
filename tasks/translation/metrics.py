"""Translation quality with sacrebleu, on detokenised text, so scores compare with published ones."""

from __future__ import annotations


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU (13a tokenisation) and chrF, both on a 0-100 scale.

    Args:
        hypotheses: System translations, one per sentence.
        references: One reference translation per sentence.

    Returns:
        ``bleu``, ``chrf`` and ``length_ratio`` (hypothesis / reference length, for BLEU's brevity penalty).
    """
    import sacrebleu  # scoring only: serving never needs it

    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return {
        "bleu": float(bleu.score),
        "chrf": float(chrf.score),
        "length_ratio": float(bleu.sys_len / bleu.ref_len),
    }
