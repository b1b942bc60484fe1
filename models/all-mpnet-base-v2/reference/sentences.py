# The fixture sentences (moved here from the all-MiniLM-L6-v2 reference when that model was removed).
"""Sentences for the reference fixture: varied on purpose (length, casing, accents, punctuation,
emoji, CJK, control characters, truncation)."""

LONG = (
    "Leadership is not a title but a practice that is renewed every day through small choices. "
    "A manager who listens before speaking, who asks what the team needs instead of assuming, "
    "and who admits mistakes openly creates the psychological safety that lets people take "
    "sensible risks. Over months, those habits compound: meetings become shorter because people "
    "trust each other to follow through, feedback becomes more honest because it is expected "
    "rather than feared, and decisions are made closer to the work by those who understand it "
    "best. None of this happens by accident. It requires deliberate attention to how goals are "
    "set, how progress is measured, how credit is shared and how failure is discussed. The best "
    "leaders I have worked with kept a short list of principles on a card in their wallet and "
    "reread it before difficult conversations. They also protected time for one-on-one meetings "
    "even when the calendar was overflowing, because they knew that a cancelled check-in sends a "
    "louder message than any all-hands speech. When the organisation grew, they wrote things down: "
    "decision logs, onboarding guides, and a candid description of how they liked to work, "
    "including their weaknesses. That transparency made it easier for new hires to ramp up and for "
    "veterans to push back. Finally, they measured themselves by the growth of the people around "
    "them, not by their own visibility, and they celebrated the quiet contributors whose work kept "
    "everything running. Teams that experience this kind of leadership rarely want to leave, and "
    "when they do, they carry the practices with them to the next place, which is perhaps the "
    "truest measure of lasting impact on an industry and a community."
)

SENTENCES = [
    "How do I give feedback to a senior engineer?",
    "How do I give feedback to a senior engineer",
    "HOW DO I GIVE FEEDBACK TO A SENIOR ENGINEER?",
    "how do i giv feedbak to a senoir enginer?",
    "What makes a great leader?",
    "Delegation is trust made visible.",
    "A team that is afraid to fail will never learn anything new, so leaders must make it safe to experiment and to speak up.",
    "My résumé mentions naïve café management in Zürich.",
    "Resume mentions naive cafe management in Zurich.",
    "Crème brûlée, façade, jalapeño, smörgåsbord, Ångström.",
    "Hello, world! (Really?) Yes: it's \"quoted\" -- and [bracketed]; {braced} & more...",
    "e-mail: someone@example.com, url: https://example.com/path?q=1&x=2#frag",
    "Prices rose 12.5% in Q3-2024 to $1,234.56 (vs. €999).",
    "I love this team 🎉🚀 great job 👍",
    "👨‍👩‍👧‍👦",
    "领导力是一种实践，而不是头衔。",
    "リーダーシップとは何ですか？",
    "한국어 문장도 테스트합니다.",
    "Mixed 中文 and English text 在一起.",
    "Привет, как дела?",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "?",
    "!",
    "a",
    "...",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nin text",
    "control\x00chars\x07here\x1b[0m",
    "zero\u200bwidth\u200djoiner and soft\u00adhyphen",
    "non\u00a0breaking\u2003spaces",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "Don't micromanage; trust your team's judgment.",
    "The quick brown fox jumps over the lazy dog.",
    "One-on-ones should be the employee's meeting, not the manager's status update.",
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ and ﬁ ligature",
    "x² + y² = z², π ≈ 3.14159, ∑ ∞",
    LONG,
    LONG + " " + LONG,
    " ".join(["word"] * 300),
]
