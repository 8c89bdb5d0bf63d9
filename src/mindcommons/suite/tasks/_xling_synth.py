"""Project-written health questions for the ``xling`` task, in en/es/zh/hi (no XLingHealth text).

Each question has one true answer; as in XLingHealth, the negative answers of a question
are the true answers of other questions, so every answer is a fluent health text and
only its fit to the question decides the label.
"""

from __future__ import annotations

from mindcommons.datasets.xlinghealth import XLingItem

# (question, true answer) per language, same content in each language.
_QA: tuple[dict[str, tuple[str, str]], ...] = (
    {
        "en": (
            "How much sleep does an adult need each night?",
            "Most adults need seven to nine hours of sleep a night.",
        ),
        "es": (
            "¿Cuántas horas de sueño necesita un adulto cada noche?",
            "La mayoría de los adultos necesita entre siete y nueve horas de sueño por noche.",
        ),
        "zh": ("成年人每晚需要睡多少小时？", "大多数成年人每晚需要七到九小时的睡眠。"),
        "hi": (
            "एक वयस्क को हर रात कितनी नींद चाहिए?",
            "अधिकांश वयस्कों को हर रात सात से नौ घंटे की नींद चाहिए।",
        ),
    },
    {
        "en": (
            "Can regular exercise help with low mood?",
            "Yes. Regular physical activity, such as a brisk walk most days, can lift mood.",
        ),
        "es": (
            "¿El ejercicio regular puede ayudar con el ánimo bajo?",
            "Sí. La actividad física regular, como caminar a paso ligero casi todos los días, "
            "puede mejorar el ánimo.",
        ),
        "zh": (
            "经常锻炼能改善情绪低落吗？",
            "能。规律的体育活动，例如大多数日子快走，可以改善情绪。",
        ),
        "hi": (
            "क्या नियमित व्यायाम उदास मन में मदद कर सकता है?",
            "हाँ। नियमित शारीरिक गतिविधि, जैसे ज़्यादातर दिनों में तेज़ चलना, मन को बेहतर कर सकती है।",
        ),
    },
    {
        "en": (
            "What should I do if I miss a dose of my antidepressant?",
            "Take it when you remember unless the next dose is close; never take a double "
            "dose, and ask your pharmacist if unsure.",
        ),
        "es": (
            "¿Qué debo hacer si olvido una dosis de mi antidepresivo?",
            "Tómela cuando lo recuerde, salvo que falte poco para la siguiente; nunca tome una "
            "dosis doble y consulte a su farmacéutico si tiene dudas.",
        ),
        "zh": (
            "如果漏服了一次抗抑郁药，我该怎么办？",
            "想起来时就服用，除非快到下一次服药时间；不要服用双倍剂量，不确定时请咨询药剂师。",
        ),
        "hi": (
            "अगर मैं अपनी अवसादरोधी दवा की एक खुराक भूल जाऊँ तो क्या करूँ?",
            "याद आते ही ले लें, जब तक अगली खुराक का समय पास न हो; कभी दोहरी खुराक न लें, "
            "और संदेह हो तो फार्मासिस्ट से पूछें।",
        ),
    },
    {
        "en": (
            "Is it normal to feel anxious before an exam?",
            "Yes, some anxiety before an exam is common; slow breathing and preparation help.",
        ),
        "es": (
            "¿Es normal sentir ansiedad antes de un examen?",
            "Sí, algo de ansiedad antes de un examen es común; respirar despacio y prepararse "
            "ayudan.",
        ),
        "zh": (
            "考试前感到焦虑正常吗？",
            "正常，考试前有些焦虑很常见；缓慢呼吸和充分准备会有帮助。",
        ),
        "hi": (
            "क्या परीक्षा से पहले चिंता महसूस करना सामान्य है?",
            "हाँ, परीक्षा से पहले थोड़ी चिंता आम है; धीमी साँस लेना और तैयारी मदद करते हैं।",
        ),
    },
)


def synthetic_items(negatives: int = 2) -> list[XLingItem]:
    """Per question: its true answer and ``negatives`` other questions' answers."""
    items: list[XLingItem] = []
    n = len(_QA)
    for q in range(n):
        chosen = [q] + [(q + k) % n for k in range(1, min(negatives, n - 1) + 1)]
        for a in chosen:
            items.append(
                XLingItem(
                    question_id=f"s{q}",
                    answer_id=f"s{a}",
                    correct=a == q,
                    questions={lang: pair[0] for lang, pair in _QA[q].items()},
                    answers={lang: pair[1] for lang, pair in _QA[a].items()},
                    row=0,
                )
            )
    return items
