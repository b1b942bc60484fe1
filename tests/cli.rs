//! The command line as a person uses it: every command run as a process, from an empty
//! directory (as an installed binary runs), on the built-in collection or on a broken one,
//! checking stdout, stderr and the exit code.

use std::path::Path;
use std::process::{Command, Output};

/// The binary, run from a fresh empty directory (no `data/`, no `.env`: a developer's own
/// `.env` cannot change the result), with none of the collection's variables set but `env`.
fn run_in_env(binary: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("INSIGHTS_PATH")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("INSIGHTS_BUILTIN")
        .env_remove("INSIGHTS_PACKS")
        .env_remove("RUST_LOG")
        .env_remove("DISCORD_TOKEN")
        .envs(env.iter().copied())
        .current_dir(cwd.path());
    command.output().expect("run insight-bot")
}

/// [`run_in_env`] with `INSIGHTS_PATH` set only when given.
fn run_in(binary: &Path, insights: Option<&str>, args: &[&str]) -> Output {
    let env: Vec<(&str, &str)> = insights.map(|p| ("INSIGHTS_PATH", p)).into_iter().collect();
    run_in_env(binary, &env, args)
}

fn run_with(insights: Option<&str>, args: &[&str]) -> Output {
    run_in(Path::new(env!("CARGO_BIN_EXE_insight-bot")), insights, args)
}

fn run(args: &[&str]) -> Output {
    run_with(None, args)
}

/// [`run`] serving the built-in packs `packs` only (`INSIGHTS_PACKS`).
fn run_packs(packs: &str, args: &[&str]) -> Output {
    run_in_env(
        Path::new(env!("CARGO_BIN_EXE_insight-bot")),
        &[("INSIGHTS_PACKS", packs)],
        args,
    )
}

/// How many insights the whole built-in library has (every pack).
fn library_size() -> usize {
    insight_bot::insights::Library::builtin().unwrap().len()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ask_prints_the_best_insight_readably() {
    let o = run(&["ask", "How", "do", "I", "stop", "micromanaging?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "strong: the insight fits the question.\n\nLearn to trust and delegate  [trust-and-delegate]"
        ),
        "{out}"
    );
    assert!(out.contains("learning to trust and delegate"), "{out}");
    assert!(out.contains("RiffOn"), "{out}");
}

#[test]
fn ask_json_is_exactly_one_object_with_the_documented_shape() {
    let o = run(&[
        "ask",
        "--json",
        "--top",
        "3",
        "How do I delegate effectively?",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["confidence", "matches", "no_close_match", "question"]
    );
    assert_eq!(v["question"], "How do I delegate effectively?");
    assert_eq!(v["confidence"], "strong");
    assert_eq!(v["no_close_match"], false);
    let matches = v["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 3);
    for m in matches {
        let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["id", "score", "source", "text", "title", "topics"]);
        assert!(m["score"].as_f64().unwrap() > 0.0);
        assert!(!m["topics"].as_array().unwrap().is_empty());
        assert!(m["source"].as_str().unwrap().contains("RiffOn"));
    }
    let scores: Vec<f64> = matches
        .iter()
        .map(|m| m["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

#[test]
fn ask_json_with_explain_carries_the_explanation() {
    let o = run(&[
        "ask",
        "--json",
        "--explain",
        "How do I delegate effectively?",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let e = &v["explanation"];
    assert_eq!(e["gate"]["on_topic"], true, "{v:#}");
    assert!(e["gate"]["insight_similarity"].as_f64().unwrap() > 0.0);
    let candidates = e["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty());
    assert_eq!(candidates[0]["id"], v["matches"][0]["id"]);
    // Without --explain, no explanation key.
    let plain = run(&["ask", "--json", "How do I delegate effectively?"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&plain)).unwrap();
    assert!(v.get("explanation").is_none());
}

#[test]
fn a_long_question_with_no_match_is_echoed_cut_and_as_text() {
    let question = format!("👨\u{200d}👩 {}", "pizza toppings ".repeat(700));
    let o = run(&["ask", &question]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("No close match for \"👨\u{200d}👩 pizza"),
        "{first}"
    );
    assert!(first.chars().count() < 140, "{first}");
    assert!(!out.contains("\\u{200d}"), "{out}");
}

/// The feedback collection of the tests (12 insights on feedback and one-on-ones) as the only
/// collection: a collection that leaves most leadership topics uncovered.
fn run_on_feedback_collection(args: &[&str]) -> Output {
    let collection = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/feedback/insights.toml"
    );
    run_in_env(
        Path::new(env!("CARGO_BIN_EXE_insight-bot")),
        &[("INSIGHTS_PATH", collection), ("INSIGHTS_BUILTIN", "off")],
        args,
    )
}

#[test]
fn a_question_on_a_topic_the_collection_lacks_is_weak_and_says_so() {
    // The issue's example: asked of a collection without any insight on hiring, it used to get
    // a confident, unrelated insight.
    let question = "How do I hire my first engineer?";
    let o = run_on_feedback_collection(&["ask", "--json", question]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["confidence"], "weak", "{v:#}");
    assert_eq!(v["no_close_match"], false);
    assert!(!v["matches"].as_array().unwrap().is_empty());

    let text = stdout(&run_on_feedback_collection(&["ask", question]));
    assert!(
        text.starts_with("weak: this is the closest insight, but it may not fit"),
        "{text}"
    );
    let plain = stdout(&run_on_feedback_collection(&["ask", "--explain", question]));
    let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        plain.starts_with("weak: the closest insight is \"")
            && plain.contains("but the question is nearer to topics this collection has no insight on, such as \""),
        "{plain}"
    );
    let debug = stdout(&run_on_feedback_collection(&[
        "ask",
        "--explain=debug",
        question,
    ]));
    assert!(debug.contains("confidence: weak"), "{debug}");
    assert!(debug.contains("uncovered topic: "), "{debug}");

    // A question the collection covers stays strong.
    let o = run_on_feedback_collection(&[
        "ask",
        "--json",
        "How do I give feedback to someone who gets defensive?",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["confidence"], "strong", "{v:#}");
}

#[test]
fn a_question_in_another_language_gets_english_only_not_try_other_words() {
    let question = "¿Cómo puedo dar feedback a mi equipo?";
    let text = stdout(&run(&["ask", question]));
    assert!(
        text.starts_with("insight-bot understands English only for now"),
        "{text}"
    );
    assert!(!text.contains("Try other words"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["ask", "--json", question]))).unwrap();
    assert_eq!(v["confidence"], "none");
    assert_eq!(v["explanation"], serde_json::Value::Null);
    let plain = stdout(&run(&["ask", "--explain", question]));
    assert!(
        plain.starts_with("none: the question is not in English"),
        "{plain}"
    );
}

#[test]
fn ask_json_off_topic_has_no_matches() {
    let o = run(&["ask", "--json", "Recommend a movie for tonight"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["no_close_match"], true);
    assert_eq!(v["confidence"], "none");
    assert_eq!(v["matches"], serde_json::json!([]));
    let text = run(&["ask", "Recommend a movie for tonight"]);
    assert!(
        stdout(&text).starts_with("No close match"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn an_empty_question_is_an_error_with_exit_2() {
    for args in [
        &["ask", ""][..],
        &["ask", "   "][..],
        &["ask", "--json", " "][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("the question is empty"),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty());
    }
    // No question at all is a usage error from clap, also exit 2.
    assert_eq!(run(&["ask"]).status.code(), Some(2));
    assert_eq!(run(&["ask", "--top", "0", "x"]).status.code(), Some(2));
}

#[test]
fn random_topics_and_check() {
    let o = run(&["random", "--topic", "ai", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["id"], "ai-back-to-ic");

    let o = run(&["random", "--topic", "cooking"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown topic \"cooking\""),
        "{}",
        stderr(&o)
    );

    // The seed pack alone has the seed page's topics.
    let o = run_packs("ic-and-management", &["topics"]);
    let out = stdout(&o);
    let line = |topic: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(topic))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(line("career").as_deref(), Some("5 insights"), "{out}");
    assert_eq!(line("delegation").as_deref(), Some("2 insights"), "{out}");

    let o = run_packs("ic-and-management", &["check"]);
    assert!(o.status.success());
    assert!(
        stdout(&o)
            .starts_with("the built-in packs ic-and-management (INSIGHTS_PACKS): OK: 11 insights"),
        "{}",
        stdout(&o)
    );
    // The whole library by default, checked for near-duplicates.
    let o = run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!(
            "the built-in packs (data/packs, all): OK: {} insights",
            library_size()
        )),
        "{out}"
    );
    assert!(
        out.ends_with("near-duplicates (cosine >= 0.85 of title and text): none\n"),
        "{out}"
    );
}

#[test]
fn packs_lists_every_pack_with_its_count_and_whether_it_is_served() {
    let o = run(&["packs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 12, "{out}");
    let seed: Vec<&str> = lines[0].split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(
        seed.iter().map(|c| c.trim()).collect::<Vec<_>>(),
        [
            "ic-and-management",
            "From IC to manager and back",
            "11 insights",
            "selected"
        ],
        "{out}"
    );
    assert!(lines[..11].iter().all(|l| l.ends_with("selected")), "{out}");
    let total = library_size();
    assert_eq!(
        lines[11],
        format!("11 packs, {total} insights; {total} served (INSIGHTS_PACKS=all (the default))")
    );

    let o = run_packs("hiring,feedback", &["packs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let served: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with("selected"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(served, ["feedback", "hiring"], "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with("(INSIGHTS_PACKS=feedback,hiring)"),
        "{out}"
    );

    // An unknown pack stops every command, naming the known ones.
    let o = run_packs("hiring,onbording", &["topics"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("INSIGHTS_PACKS: unknown pack \"onbording\": the packs are ic-and-management, one-on-ones,"),
        "{}",
        stderr(&o)
    );
    // And only the chosen packs are served.
    let o = run_packs("hiring", &["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("OK: 10 insights"), "{}", stdout(&o));
}

#[test]
fn an_installed_binary_answers_from_any_directory() {
    // What `cargo install --path .` leaves: the binary alone, away from the repository.
    let bin = tempfile::tempdir().unwrap();
    let installed = bin.path().join("insight-bot");
    std::fs::copy(env!("CARGO_BIN_EXE_insight-bot"), &installed).unwrap();
    let o = run_in(&installed, None, &["ask", "How do I stop micromanaging?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\nLearn to trust and delegate  [trust-and-delegate]"),
        "{}",
        stdout(&o)
    );
    let o = run_in(&installed, None, &["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("built-in packs"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("OK: {} insights", library_size())),
        "{}",
        stdout(&o)
    );
}

#[test]
fn insights_path_adds_to_the_builtin_collection_or_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ours.toml"),
        "[[insight]]\nid = \"our-own\"\ntitle = \"Run a blameless retro\"\ntext = \"Ask what in the process let the incident happen.\"\ntopics = [\"retros\"]\nasks = [\"How do we run a postmortem?\"]\nsource = { title = \"Our wiki\", publisher = \"Us\" }\n",
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let o = run_with(Some(path), &["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("OK: {} insights", library_size() + 1)),
        "{}",
        stdout(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["check"])
        .env("INSIGHTS_PATH", path)
        .env("INSIGHTS_BUILTIN", "off")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("OK: 1 insights"), "{}", stdout(&o));
}

#[test]
fn broken_data_stops_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        "[[insight]]\nid = \"Not A Slug\"\ntitle = \"t\"\ntext = \"x\"\ntopics = [\"a\"]\nasks = [\"q\"]\nsource = { title = \"s\", publisher = \"p\" }\n",
    )
    .unwrap();
    for cmd in [&["check"][..], &["ask", "anything"][..], &["topics"][..]] {
        let o = run_with(Some(dir.path().to_str().unwrap()), cmd);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}");
        let err = stderr(&o);
        let expected = format!(
            "{}:1: id \"Not A Slug\" is not a lowercase slug",
            file.display()
        );
        assert!(err.contains(&expected), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The path itself is unreadable: the variable and the absolute path, not a file:line.
    let missing = run_with(Some("/nonexistent/insights"), &["check"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing)
            .contains("INSIGHTS_PATH: /nonexistent/insights: cannot read: No such file"),
        "{}",
        stderr(&missing)
    );
    let relative = run_with(Some("my-insights"), &["check"]);
    let err = stderr(&relative);
    assert!(err.starts_with("error: INSIGHTS_PATH: /"), "{err}");
    assert!(err.contains("/my-insights: cannot read"), "{err}");
}

#[test]
fn bad_configuration_names_the_variable() {
    // A setting of the bot's, where the bot's settings are read (the offline commands ignore it).
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["check-config"])
        .env("DISCORD_GUILD_ID", "my server")
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("DISCORD_GUILD_ID"), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["check"])
        .env("RUST_LOG", "[[[")
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RUST_LOG"), "{}", stderr(&o));
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "ask",
        "random",
        "topics",
        "check",
        "packs",
        "check-config",
        "run",
        "next-posts",
        "stats",
    ] {
        let o = run(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}");
        assert!(stdout(&o).contains("Usage: insight-bot"), "{cmd}");
    }
    let o = run(&["--help"]);
    assert!(stdout(&o).contains("ask"));
}

#[test]
fn next_posts_prints_utc_instants_across_dst() {
    // New York's spring-forward Sunday 2026-03-08: 02:30 does not exist, the post goes out at
    // 03:00 EDT = 07:00Z; the week after, 02:30 EDT = 06:30Z.
    let o = run(&[
        "next-posts",
        "--day",
        "sun",
        "--time",
        "02:30",
        "--timezone",
        "America/New_York",
        "--from",
        "2026-03-01T08:00:00Z",
        "--count",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "2026-03-08T07:00:00Z\n2026-03-15T06:30:00Z\n2026-03-22T06:30:00Z\n"
    );
    // --local shows the wall clock and offset beside UTC: 02:30 did not exist on the 8th.
    let local = run(&[
        "next-posts",
        "--day",
        "sun",
        "--time",
        "02:30",
        "--timezone",
        "America/New_York",
        "--from",
        "2026-03-01T08:00:00Z",
        "--count",
        "2",
        "--local",
    ]);
    assert_eq!(
        stdout(&local),
        "2026-03-08T07:00:00Z  Sun 2026-03-08 03:00 -04:00 (America/New_York)\n\
         2026-03-15T06:30:00Z  Sun 2026-03-15 02:30 -04:00 (America/New_York)\n"
    );
    for bad in [
        &["next-posts", "--time", "25:00"][..],
        &["next-posts", "--timezone", "Mars/Olympus"][..],
        &["next-posts", "--day", "someday"][..],
        &["next-posts", "--from", "yesterday"][..],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&o).contains("for example"), "{}", stderr(&o));
    }
    // A fixed-offset abbreviation would post an hour late all summer: refused, with the zone.
    let o = run(&["next-posts", "--timezone", "EST"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is an abbreviation, not a time zone")
            && stderr(&o).contains("America/New_York"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn next_posts_follows_every_cadence() {
    let instants = |repeat: &str| {
        let o = run(&[
            "next-posts",
            "--repeat",
            repeat,
            "--time",
            "09:00",
            "--from",
            "2026-12-04T10:00:00Z", // a Friday, after its 09:00
            "--count",
            "3",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(
        instants("weekdays"),
        "2026-12-07T09:00:00Z\n2026-12-08T09:00:00Z\n2026-12-09T09:00:00Z\n"
    );
    assert_eq!(
        instants("daily"),
        "2026-12-05T09:00:00Z\n2026-12-06T09:00:00Z\n2026-12-07T09:00:00Z\n"
    );
    assert_eq!(
        instants("every-2-weeks"),
        "2026-12-07T09:00:00Z\n2026-12-21T09:00:00Z\n2027-01-04T09:00:00Z\n"
    );
    let o = run(&["next-posts", "--repeat", "fortnightly"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("every-2-weeks"), "{}", stderr(&o));
}

#[test]
fn ask_explain_says_why_in_sentences_and_debug_shows_the_figures() {
    let o = run(&[
        "ask",
        "--explain",
        "new EM, cant stop micromanagin my team tbh",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = stdout(&o);
    assert!(
        plain.starts_with("strong: matched \"Learn to trust and delegate")
            && plain.contains("closest to"),
        "{plain}"
    );
    assert!(
        plain.contains("To change this, add the question"),
        "{plain}"
    );
    for figure in ["margin", "bm25", "similarity 0.", "gate:"] {
        assert!(
            !plain.contains(figure),
            "{figure} in the plain explanation: {plain}"
        );
    }
    let off = run(&["ask", "--explain", "who directed the new dune movie?"]);
    assert!(
        stdout(&off)
            .starts_with("none: the question reads more like a message about something else"),
        "{}",
        stdout(&off)
    );
    let o = run(&[
        "ask",
        "--explain=debug",
        "new EM, cant stop micromanagin my team tbh",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("question as matched: new engineering manager, cannot stop micromanagin my team to be honest"),
        "{out}"
    );
    assert!(out.contains("confidence: strong"), "{out}");
    assert!(out.contains("gate: on topic"), "{out}");
    assert!(out.contains("closest off-topic message"), "{out}");
    assert!(out.contains("trust-and-delegate"), "{out}");
    assert!(out.contains("similarity"), "{out}");
    let off = run(&["ask", "--explain=debug", "who directed the new dune movie?"]);
    let out = stdout(&off);
    assert!(out.contains("confidence: none"), "{out}");
    assert!(out.contains("gate: off topic"), "{out}");
    assert!(out.contains("No close match"), "{out}");
}

#[test]
fn check_config_validates_a_deployment_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("check-config")
        .env(
            "DATABASE_URL",
            "postgres://bot:s3cret@db.internal:5432/insights",
        )
        .env("SHARD_RANGE", "2-3")
        .env("SHARD_TOTAL", "4")
        .env("METRICS_ADDR", "127.0.0.1:9100")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("INSIGHTS_PATH")
        .env("DISCORD_TOKEN", "MTIz.fake-test.token_value")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("shards: shards 2-3 of 4"), "{out}");
    assert!(out.contains("not contacted"), "{out}");
    assert!(
        out.contains("METRICS_ADDR: 127.0.0.1:9100 serves /healthz, /readyz and /metrics"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "the password is printed: {out}");
    assert!(out.contains("DISCORD_TOKEN: set"), "{out}");
    assert!(
        out.contains("embedding model: built in (all-mpnet-base-v2), loaded; self-check passed"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("OK"), "{out}");
    // A range beyond the total is refused, naming the variable.
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("check-config")
        .env("DATABASE_URL", "postgres://bot@db.internal/insights")
        .env("SHARD_RANGE", "2-4")
        .env("SHARD_TOTAL", "4")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SHARD_RANGE"), "{}", stderr(&o));
}

/// `check-config` with the given database and API base, from an empty directory.
fn check_config_with(database: &str, api_base: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("check-config")
        .env("DATABASE_URL", database)
        .env("DISCORD_API_BASE", api_base)
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("INSIGHTS_PATH")
        .env("DISCORD_TOKEN", "MTIz.fake-test.token_value")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .output()
        .unwrap()
}

#[test]
fn check_config_never_shows_a_database_password_nor_api_base_credentials() {
    let proxy = "https://proxyuser:proxypass@proxy.example";
    // Accepted, and printed: a raw `?` in the password, an encoded option name.
    for database in [
        "postgres://bot:s3cr?et@db.example:5432/insights",
        "postgres://bot@db.example:5432/insights?passw%6Frd=topsecret",
        "postgres://bot:top%20secret@db.example:5432/insights?sslmode=prefer&password=secret2",
    ] {
        let o = check_config_with(database, proxy);
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(o.status.success(), "{database}: {err}");
        for secret in ["s3cr", "et@", "secret", "proxypass", "proxyuser"] {
            assert!(!out.contains(secret), "{secret} shown: {out}");
            assert!(!err.contains(secret), "{secret} shown: {err}");
        }
        assert!(out.contains("db.example:5432/insights"), "{out}");
        assert!(
            out.contains("Discord API: https://<redacted>@proxy.example"),
            "{out}"
        );
    }
    // Refused, and quoted in the error.
    for (database, api_base) in [
        ("host=db.example password='top secret'", proxy),
        ("postgres://bot:s3cr?et@db.example:notaport/x", proxy),
        (
            "sqlite://insight-bot.db",
            "http://proxyuser:proxypass@proxy.example",
        ),
    ] {
        let o = check_config_with(database, api_base);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(2), "{database} {api_base}: {out}");
        for secret in ["s3cr", "et@", "secret", "proxypass", "proxyuser"] {
            assert!(!err.contains(secret), "{secret} shown: {err}");
        }
        assert!(err.contains("example"), "{err}");
    }
    // The hint's placeholder is not taken for a password.
    let o = check_config_with("host=db.example password=x", proxy);
    assert!(
        stderr(&o).contains("postgres://user:<password>@host:5432/database"),
        "{}",
        stderr(&o)
    );
}

/// A port on this machine that nothing listens on: a connection to it is refused at once.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `insight-bot run` from `dir`, its REST calls sent to `api_base`, with a SQLite state file in
/// `dir`, the shared vector cache, no INSIGHTS_PATH and no RUST_LOG (callers add the token).
fn run_bot_at(dir: &Path, api_base: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_insight-bot"));
    command
        .arg("run")
        .env("DISCORD_API_BASE", api_base)
        .env("DATABASE_URL", "sqlite://state.db")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("INSIGHTS_PATH")
        .env_remove("RUST_LOG")
        .current_dir(dir);
    command
}

#[test]
fn an_unreachable_api_base_is_reported_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: refused at once, on this machine only.
    let port = closed_port();
    let o = run_bot_at(
        dir.path(),
        &format!("http://proxyuser:proxypass@127.0.0.1:{port}"),
    )
    .env("DISCORD_TOKEN", "MTIz.fake-test.token_value")
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach Discord at http://<redacted>@127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(!err.contains("proxypass"), "{err}");
    assert!(!err.contains("proxyuser"), "{err}");
}

#[test]
fn stats_reports_every_server_one_server_or_dms_from_the_database_with_a_chart() {
    use insight_bot::store::{NewAnswer, Store, Vote};
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("state.db");
    let today = chrono::Utc::now().date_naive();
    {
        let store = Store::open(&db_path).unwrap();
        let db = store.blocking();
        let answers: Vec<NewAnswer> = (0..10u64)
            .map(|n| NewAnswer {
                id: n + 1,
                guild_id: match n % 5 {
                    0 => None,
                    1 | 2 => Some(7),
                    _ => Some(8),
                },
                day: today - chrono::Duration::days(n as i64),
                insight_id: (n % 4 != 3).then(|| "fix-the-system".to_string()),
                no_close_match: n % 4 == 3,
                weak: false,
                question: None,
                question_vector: None,
            })
            .collect();
        db.record_answers(&answers).unwrap();
        for (n, a) in answers.iter().enumerate() {
            if let Some(id) = &a.insight_id {
                db.record_shown(a.guild_id.unwrap_or(0), id, a.day).unwrap();
                db.record_vote(a.id, &[n as u8; 32], Vote::Helpful, a.day)
                    .unwrap();
            }
        }
    }
    let url = format!("sqlite://{}", db_path.display());
    let chart = dir.path().join("chart.png");
    let run_stats = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_insight-bot"))
            .arg("stats")
            .args(args)
            .env("DATABASE_URL", &url)
            .env_remove("INSIGHTS_PATH")
            .env_remove("RUST_LOG")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = run_stats(&["--days", "30", "--chart", chart.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // n = 3 and 7 found no close match: 2 of 10.
    assert!(
        out.contains("answers: 10 (2 with no close match, 20.0%)"),
        "{out}"
    );
    assert!(out.contains("      8  fix-the-system"), "{out}");
    assert!(out.contains("100.0% of     8  fix-the-system"), "{out}");
    // Every shipped insight but fix-the-system.
    assert!(
        out.contains(&format!("never shown: {}", library_size() - 1)),
        "{out}"
    );
    let png = std::fs::read(&chart).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Server 7 has n = 1, 2, 6 and 7; n = 7 found no close match.
    let out = stdout(&run_stats(&["--server", "7"]));
    assert!(
        out.contains("answers: 4 (1 with no close match, 25.0%)"),
        "{out}"
    );
    let out = stdout(&run_stats(&["--dms"]));
    assert!(
        out.contains("answers: 2 (0 with no close match, 0.0%)"),
        "{out}"
    );
    // A shorter period leaves the older answers out.
    let out = stdout(&run_stats(&["--days", "3"]));
    assert!(
        out.contains("answers: 3 (0 with no close match, 0.0%)"),
        "{out}"
    );
    let o = run_stats(&["--server", "7", "--dms"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A copy of the repository's model folder in `dir`, with the files the binary reads.
fn copy_model(dir: &Path) {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join(insight_bot::embedding::MODEL_DIR);
    for entry in std::fs::read_dir(&model).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The files loading reads; not the licence, provenance or conversion scripts.
        if name.ends_with(".json") || name.ends_with(".safetensors") {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
}

fn check_config_with_model(model: &Path) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("check-config")
        .env("EMBEDDING_MODEL_PATH", model)
        .env("EMBEDDING_CACHE_DIR", "off")
        .env("DATABASE_URL", "sqlite://state.db")
        .env_remove("INSIGHTS_PATH")
        .env("DISCORD_TOKEN", "MTIz.fake-test.token_value")
        .env_remove("SHARD_RANGE")
        .env_remove("SHARD_TOTAL")
        .current_dir(cwd.path())
        .output()
        .unwrap()
}

#[test]
fn check_config_refuses_a_damaged_model_naming_its_path() {
    let model = tempfile::tempdir().unwrap();
    copy_model(model.path());
    let o = check_config_with_model(model.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("self-check passed"), "{}", stdout(&o));

    // NaN weights used to pass check-config (and then every answer was "no close match").
    let name = "encoder.layer.0.intermediate.dense.bias";
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model.path().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let weights = model
        .path()
        .join(index["weight_map"][name].as_str().unwrap());
    let bytes = std::fs::read(&weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = file
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.dtype(),
                v.shape().to_vec(),
                v.data().to_vec(),
            )
        })
        .collect();
    for (n, _, _, data) in &mut tensors {
        if n == name {
            data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        }
    }
    let views = tensors.iter().map(|(n, d, shape, data)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(*d, shape.clone(), data).unwrap(),
        )
    });
    std::fs::write(&weights, safetensors::serialize(views, None).unwrap()).unwrap();
    let o = check_config_with_model(model.path());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "EMBEDDING_MODEL_PATH: {}: tensor `{name}`",
            weights.display()
        )),
        "{err}"
    );

    // A config beyond the bounds: an error, not an abort.
    copy_model(model.path());
    let config = model.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let huge = text.replace(
        "\"num_hidden_layers\": 12",
        "\"num_hidden_layers\": 1000000000000",
    );
    assert_ne!(huge, text);
    std::fs::write(&config, huge).unwrap();
    let o = check_config_with_model(model.path());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}: num_hidden_layers is 1000000000000, allowed 1..=48",
            config.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn model_reference_writes_the_file_a_new_model_needs() {
    let model = tempfile::tempdir().unwrap();
    copy_model(model.path());
    let reference = model.path().join(insight_bot::embedding::self_check::FILE);
    let shipped: insight_bot::embedding::ReferenceEmbedding =
        serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();
    std::fs::remove_file(&reference).unwrap();
    let o = check_config_with_model(model.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("model-reference"), "{}", stderr(&o));

    let o = run(&["model-reference", &model.path().to_string_lossy()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written: insight_bot::embedding::ReferenceEmbedding =
        serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(written.sentence, shipped.sentence);
    // This build's forward pass on the int8 weights against the Python float64 one on the
    // original f32 weights (the self-check at load wants 0.999).
    let cos: f32 = written
        .embedding
        .iter()
        .zip(&shipped.embedding)
        .map(|(a, b)| a * b)
        .sum();
    assert!(cos > 0.9995, "{cos}");
    std::fs::write(&reference, stdout(&o)).unwrap();
    let o = check_config_with_model(model.path());
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `run` against a port nothing listens on, with the token from a file and credentials in the
/// API base, logging everything at debug in `format`: its stderr.
fn failing_run_logs(format: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let token = "MTIz.fake-test.token_value";
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let port = closed_port();
    let o = run_bot_at(
        dir.path(),
        &format!("http://proxyuser:proxypass@127.0.0.1:{port}"),
    )
    .env_remove("DISCORD_TOKEN")
    .env("DISCORD_TOKEN_FILE", dir.path().join("token"))
    .env("LOG_FORMAT", format)
    .env("RUST_LOG", "debug")
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for secret in [token, "proxypass", "proxyuser"] {
        assert!(
            !err.contains(secret),
            "{secret} in the {format} logs:\n{err}"
        );
    }
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe:\n{err}");
    (o, err)
}

#[test]
fn json_logs_are_one_object_a_line_and_neither_format_shows_a_secret() {
    let (_, json) = failing_run_logs("json");
    let lines: Vec<&str> = json.lines().filter(|l| !l.starts_with("error: ")).collect();
    assert!(lines.len() >= 3, "too few log lines to judge:\n{json}");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["timestamp", "level", "target"] {
            assert!(object.get(key).is_some(), "no {key}: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("\"message\"")),
        "no message field:\n{json}"
    );
    let (_, text) = failing_run_logs("text");
    assert!(text.contains("cannot reach Discord"), "{text}");
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_variable() {
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["ask", "how do I delegate?"])
        .env("LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("LOG_FORMAT: \"xml\" is not a log format"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stats_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("stats")
        .env("DATABASE_URL", "sqlite://missing/folder/state.db")
        .env_remove("INSIGHTS_PATH")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("there is no database at /"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("missing").exists(), "a folder was created");
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_status_cat_gives() {
    for args in [&["topics"][..], &["ask", "how do I delegate?"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
            .args(args)
            .env_remove("INSIGHTS_PATH")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the program writes (it is still loading): every write
        // meets a closed pipe, as `| head -1` does once it has its line.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
    // `stats --days 366 | head` used to panic (exit 101) in half the runs.
    let dir = tempfile::tempdir().unwrap();
    drop(insight_bot::store::Store::open(&dir.path().join("state.db")).unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["stats", "--days", "366"])
        .env("DATABASE_URL", "sqlite://state.db")
        .env_remove("INSIGHTS_PATH")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(141), "stats: {}", stderr(&o));
}

#[test]
fn offline_commands_ignore_settings_only_the_bot_uses() {
    let half_filled = [
        ("DISCORD_TOKEN", "abc"),
        ("SHARDS", "-1"),
        ("DATABASE_URL", "mysql://x"),
        ("DISCORD_GUILD_ID", "abc"),
        ("DISCORD_API_BASE", "http://example.com"),
    ];
    let with = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_insight-bot"));
        command.args(args).env_remove("INSIGHTS_PATH");
        for (name, value) in half_filled {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    for args in [
        &["ask", "how do I delegate?"][..],
        &["topics"][..],
        &["random"][..],
        &["check"][..],
        &["next-posts"][..],
    ] {
        let o = with(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    // What the bot itself reads is still checked where it is used.
    let o = with(&["check-config"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_config_reports_every_problem_with_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    // Three bad values, no token, a cache folder that is a file, a damaged database.
    std::fs::write(dir.path().join("cache"), "a file, not a folder").unwrap();
    std::fs::write(dir.path().join("state.db"), vec![0x5a; 8192]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("check-config")
        .env_remove("DISCORD_TOKEN")
        .env("DISCORD_GUILD_ID", "abc")
        .env("SHARDS", "-1")
        .env("INSIGHTS_BUILTIN", "maybe")
        .env("EMBEDDING_CACHE_DIR", "cache")
        .env("DATABASE_URL", "sqlite://state.db")
        .env_remove("INSIGHTS_PATH")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for variable in ["DISCORD_GUILD_ID", "SHARDS", "INSIGHTS_BUILTIN"] {
        assert!(
            err.contains(&format!("error: {variable}: ")),
            "{variable}: {err}"
        );
    }
    // Reported too, once the settings are read: the token, the cache, the database.
    let again = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("check-config")
        .env_remove("DISCORD_TOKEN")
        .env("EMBEDDING_CACHE_DIR", "cache")
        .env("DATABASE_URL", "sqlite://state.db")
        .env_remove("INSIGHTS_PATH")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(2), "{err}");
    let root = dir.path().canonicalize().unwrap();
    assert!(err.contains("error: DISCORD_TOKEN: not set"), "{err}");
    assert!(
        err.contains(&format!(
            "error: EMBEDDING_CACHE_DIR: {}",
            root.join("cache").display()
        )) || err.contains(&format!(
            "error: EMBEDDING_CACHE_DIR: {}",
            dir.path().join("cache").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("state.db: not a readable SQLite database"),
        "{err}"
    );
    assert!(err.contains("3 problems: `run` would not start"), "{err}");
    assert!(
        !stdout(&again).lines().any(|l| l == "OK"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn ask_wraps_the_insight_to_the_width_and_says_what_scores_mean() {
    let o = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["ask", "--top", "2", "how do I delegate?"])
        .env("COLUMNS", "50")
        .env_remove("INSIGHTS_PATH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("similarity to the question, 0 to 1"), "{out}");
    // The texts are wrapped (titles and source lines are shown whole).
    let text_lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("  [") && !l.starts_with("  ") && !l.starts_with('('))
        .collect();
    assert!(text_lines.iter().all(|l| l.chars().count() <= 50), "{out}");
}

/// A port on this machine that accepts connections and never answers (a stuck proxy), and the
/// `run` command pointed at it, with the token from the environment.
fn run_against_a_silent_api() -> (std::process::Child, tempfile::TempDir) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let child = run_bot_at(dir.path(), &format!("http://127.0.0.1:{port}"))
        .env("DISCORD_TOKEN", "MTIz.fake-test.token_value")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

#[test]
fn start_up_against_a_silent_api_gives_up_with_a_clear_error() {
    let (child, _dir) = run_against_a_silent_api();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no answer within 15 s"), "{err}");
}

#[test]
fn sigterm_during_start_up_exits_0() {
    let (mut child, _dir) = run_against_a_silent_api();
    // Loading, or waiting for the silent API: either way, still starting.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the signal"
    );
    let asked = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        asked.elapsed()
    );
    assert!(
        stderr(&o).contains("SIGTERM during start-up"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_curation_guides_example_loads_beside_the_shipped_collection() {
    // Copied as it is from docs/curation.md ("Adding insights"), it must load: its id used to
    // repeat a shipped one.
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/curation.md"))
            .unwrap();
    let start = guide.find("```toml\n").expect("a TOML example") + "```toml\n".len();
    let example = &guide[start..start + guide[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ours.toml");
    std::fs::write(&file, example).unwrap();
    let o = run_with(Some(file.to_str().unwrap()), &["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("OK: {} insights", library_size() + 1)),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_warns_of_an_operators_near_duplicate_naming_both_ids_and_still_succeeds() {
    // A copy of a shipped insight under another id, lightly reworded: a near-duplicate across
    // the built-in packs and INSIGHTS_PATH.
    let library = insight_bot::insights::Library::builtin().unwrap();
    let original = library.get("trust-and-delegate").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ours.toml");
    let copy = insight_bot::insights::Insight {
        id: "our-delegation".into(),
        title: format!("{}, always", original.title),
        pack: None,
        ..original.clone()
    };
    std::fs::write(&file, insight_bot::insights::export_toml(&[copy])).unwrap();
    let o = run_with(Some(file.to_str().unwrap()), &["check"]);
    assert!(
        o.status.success(),
        "a warning, not an error: {}",
        stderr(&o)
    );
    let out = stdout(&o);
    let warning = out
        .lines()
        .find(|l| l.starts_with("warning: near-duplicates: "))
        .unwrap_or_else(|| panic!("no warning:\n{out}"));
    assert!(
        warning.starts_with(
            "warning: near-duplicates: trust-and-delegate and our-delegation (cosine 0."
        ),
        "{warning}"
    );
    assert!(!out.contains("near-duplicates (cosine >= 0.85 of title and text): none"));
}
