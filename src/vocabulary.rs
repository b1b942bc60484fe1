//! The domain vocabulary: families of words people use for the same leadership idea.
//!
//! People who never read the insights ask in their own words ("I keep rewriting my engineers'
//! code" for delegation, "is managing a job for life?" for the tour of duty). Stemming relates
//! "promoted" to "promotion" but not "promotion" to "title" or "career ladder", so the search
//! index adds a concept term wherever a member of one of these families appears, in the insights
//! and in questions alike. Members may be phrases; they are matched on stemmed words with stop
//! words kept ("hand off", "step down").
//!
//! Keep families tight: a family that includes a vague word relates everything to everything.
//! Vague words that are still useful members (e.g. "title") are listed in [`EVERYDAY_WORDS`] too,
//! so that on their own they do not make a question look on topic.

/// (concept name, members). Members are words or phrases, in any inflection (they are stemmed).
pub const CONCEPTS: &[(&str, &[&str])] = &[
    (
        "promotion",
        &[
            "promotion", "promoted", "promote", "title", "career ladder", "next level",
            "advancement", "progression", "seniority", "level up", "step up", "promo", "promos",
            "climb the ladder", "climbing the ladder", "get ahead", "position",
        ],
    ),
    (
        "career",
        &["career", "career path", "career move", "trajectory", "job change", "track"],
    ),
    (
        "delegate",
        &[
            "delegate", "delegation", "let go", "letting go", "trust", "micromanage",
            "micromanaging", "micromanager", "micromanagement", "hand off", "handoff", "empower",
            "empowerment", "bottleneck", "get out of their way", "rewrite", "rewriting",
            "checking their work", "do everything myself", "doing everything myself",
            "in the weeds", "control freak", "hand over", "let them",
        ],
    ),
    (
        "director",
        &[
            "director", "vp", "vice president", "executive", "exec", "strategic", "strategy",
            "head of", "c-level", "senior leadership", "leadership team", "big picture",
            "department", "departments", "division", "org-wide", "tactical", "tactics",
        ],
    ),
    (
        "founder",
        &[
            "founder", "cofounder", "co-founder", "ceo", "startup", "start-up", "entrepreneur",
            "scale-up", "company grew", "company grows", "company is growing",
        ],
    ),
    (
        "manager",
        &[
            "manager", "management", "manage", "managing", "boss", "supervisor", "team lead",
            "tech lead", "people manager", "line manager", "lead a team", "leading a team",
            "direct reports",
        ],
    ),
    (
        "individual-contributor",
        &[
            "ic", "individual contributor", "hands-on", "engineer", "developer", "programmer",
            "coder", "coding", "staff engineer", "principal engineer", "maker", "stay technical",
            "technical work", "write code", "writing code",
        ],
    ),
    (
        "authority",
        &[
            "authority", "influence", "decision", "decisions", "decide", "decision-making",
            "power", "clout", "a say", "listened to", "get heard", "a voice", "have reports",
        ],
    ),
    (
        "ownership",
        &[
            "own", "owner", "ownership", "unowned", "responsible", "responsibility",
            "accountable", "accountability", "nobody owns", "no one owns", "initiative",
            "proactive", "proactively", "take charge", "falling through the cracks",
            "fall through the cracks", "dropped the ball", "nobody is responsible",
            "create a role", "create a job", "new role", "carve out", "doesn't exist yet",
        ],
    ),
    (
        "ai",
        &[
            "ai", "artificial intelligence", "machine learning", "ml", "llm", "llms", "genai",
            "chatgpt", "gpt", "generative", "deep learning", "copilot",
        ],
    ),
    (
        "cross-functional",
        &[
            "cross-functional", "operations", "marketing", "sales", "finance", "holistic",
            "other departments", "generalist", "business side", "the business", "specialist",
            "specialize", "specialized", "well-rounded", "broad", "breadth", "dabble",
            "other functions", "other teams",
        ],
    ),
    (
        "system",
        &[
            "system", "systems", "root cause", "recurring", "same mistakes", "same problems",
            "keeps happening", "keep happening", "firefighting", "firefight",
            "patching", "symptoms", "keep showing up", "keeps showing up", "again and again",
            "every sprint",
        ],
    ),
    (
        "enabler",
        &[
            "enabler", "manager of managers", "managing managers", "second-line", "skip-level",
            "personal output", "leverage", "multiplier", "force multiplier", "lead leads",
            "leading leads", "mindset", "identity", "useless", "my impact", "my output",
            "gets done", "get done", "do it myself", "do the work myself", "do the task myself",
        ],
    ),
    (
        "temporary",
        &[
            "temporary", "tour of duty", "one-way", "one way", "permanent", "forever",
            "go back", "going back", "return", "stint", "for life",
        ],
    ),
    (
        "lateral",
        &[
            "lateral", "sideways", "down-level", "downlevel", "down-leveled", "step down",
            "demotion", "demote", "pay cut", "lower level", "walk away", "walked away",
            "turn down", "turned down", "stop chasing",
        ],
    ),
    (
        "freedom",
        &[
            "freedom", "autonomy", "my time", "passion", "passionate", "deep technical",
            "flexibility", "independence", "enjoy", "love",
        ],
    ),
    ("culture", &["culture", "values", "morale", "culture builder"]),
    (
        "quality",
        &[
            "bug", "bugs", "bad code", "code quality", "quality", "defect", "incident",
            "outage", "mistake", "mistakes", "errors", "prod", "production issues",
        ],
    ),
    ("scale", &["scale", "scaling", "grow", "growing", "grew", "growth", "hypergrowth"]),
    ("hiring", &["hire", "hiring", "recruit", "recruiting", "talent", "talented"]),
];

/// NLTK English stop words that carry meaning here and are kept in the index.
pub const KEPT_STOP_WORDS: &[&str] = &["own", "same", "off", "down", "up", "back"];

/// Everyday English that is not a stop word: on its own such a word says nothing about whether a
/// question is about leadership ("best", "time", "good"), so it never counts as evidence of one.
/// It still counts in ranking once a question is on topic.
pub const EVERYDAY_WORDS: &[&str] = &[
    "a", "able", "about", "actually", "after", "again", "ago", "all", "also", "always", "any",
    "anyone", "anything", "around", "ask", "away", "back", "bad", "be", "because", "been", "best",
    "better", "big", "bit", "buy", "call", "can", "cannot", "change", "cheap", "come", "could",
    "day", "days", "different", "do", "does", "done", "down", "each", "easy", "else", "end",
    "enough", "even", "ever", "every", "feel", "find", "first", "fix", "five", "four", "free",
    "friend", "full", "get", "give", "go", "going", "good", "got", "great", "happen", "hard",
    "have", "help", "here", "high", "hour", "hours", "how", "idea", "important", "keep", "kind",
    "know", "last", "late", "least", "less", "let", "life", "like", "little", "live", "long",
    "look", "lot", "low", "made", "make", "many", "may", "maybe", "me", "mean", "might", "mind",
    "minute", "month", "more", "most", "move", "much", "must", "near", "need", "never", "new",
    "next", "nice", "night", "now", "number", "off", "old", "one", "open", "other", "over", "own",
    "part", "people", "person", "place", "play", "please", "point", "put", "quick", "quickly",
    "real", "really", "recommend", "right", "said", "same", "say", "see", "seem", "set", "should",
    "show", "side", "since", "small", "so", "some", "something", "start", "step", "still", "stop",
    "sure", "take", "talk", "tell", "thank", "thanks", "thing", "things", "think", "three", "time",
    "title", "today", "together", "tomorrow", "tonight", "too", "top", "track", "try", "turn",
    "two", "up", "use", "used", "useful", "value", "very", "view", "want", "way", "week", "well",
    "what", "when", "where", "which", "while", "who", "why", "will", "with", "without", "word",
    "work", "world", "would", "year", "years", "yes", "yet", "return", "power", "level", "way",
    "process", "system", "own", "grow", "growth", "decide", "decision",
    "mistake", "mistakes", "errors", "quality", "code", "someone", "everyone", "everybody",
    "somebody", "anybody", "nobody", "stuff", "guys", "folks", "okay", "ok", "lol", "pls",
];
