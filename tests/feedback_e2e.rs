//! End to end: learning from answers through the fake Discord — the Helpful / Not what I needed
//! buttons under `/advice` and DM answers (one vote per person, changed by a second click),
//! `/insights stats` against a known history (with its PNG chart), `/insights gaps` (kept only
//! when on, per server, deleted when off, turned into an insight with the add form), and
//! retention on a manual clock. Every body the bot sends is checked against Discord's OpenAPI
//! spec when the bot stops.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use insight_bot::embedding::{cosine, Embedder};
use insight_bot::insights::search::Question;
use insight_bot::stats::gap_vectors;
use insight_bot::store::{NewAnswer, Store, UsageScope, Vote};
use insight_bot::weekly::clock::ManualClock;
use serde_json::Value;
use support::answers::*;
use support::bot::*;
use support::payloads::*;
use support::{FakeDiscord, WAIT};

const OTHER_GUILD: u64 = GUILD_ID + 50;
const OFF_TOPIC: &str = "what is the best recipe for banana bread";
const OFF_TOPIC_AGAIN: &str = "best banana bread recipe?";
const ON_TOPIC: &str = "How do I stop micromanaging my team?";

fn insights_cmd(sub: &str, options: Vec<Value>) -> InteractionBuilder {
    slash_command("insights", vec![opt_subcommand(sub, options)])
}

fn advice_in(guild: u64, question: &str) -> InteractionBuilder {
    slash_command("advice", vec![opt_string("question", question)]).in_guild(
        guild,
        GENERAL_CHANNEL_ID,
        fresh_member(),
    )
}

async fn stop(fake: &FakeDiscord, bot: insight_bot::bot::RunningBot) {
    match tokio::time::timeout(WAIT, bot.shutdown()).await {
        Ok(Ok(())) => {}
        other => panic!("the bot did not stop cleanly: {other:?}"),
    }
    fake.assert_all_bodies_valid();
}

/// Polls `check` on the store (off the runtime) until it holds.
async fn eventually(what: &str, store: &Store, check: impl Fn(&Store) -> bool + Send + Sync) {
    let deadline = Instant::now() + WAIT;
    loop {
        if check(store) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn answers_recorded(store: &Store, scope: UsageScope, day: NaiveDate) -> u64 {
    store
        .blocking()
        .usage_stats(scope, day, day)
        .unwrap()
        .days
        .iter()
        .map(|d| d.answers)
        .sum()
}

/// Clicks `custom_id` on `message` as `member` in the test guild; the bot's ephemeral notice.
async fn click_as(fake: &FakeDiscord, message: &Value, custom_id: &str, member: Value) -> String {
    let click =
        button_click(custom_id, message.clone()).in_guild(GUILD_ID, GENERAL_CHANNEL_ID, member);
    let (_, kind, notice) = send(fake, &click).await;
    assert_eq!(kind, 4, "{notice:#}");
    assert_eq!(
        notice["flags"].as_u64().unwrap_or(0) & 64,
        64,
        "ephemeral: {notice:#}"
    );
    content(&notice)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_count_once_per_person_a_second_click_changes_one_and_nobody_is_stored() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let bot = start_bot_with_store(&fake, store.clone()).await;

    let (asked, kind, answer) = send(&fake, &advice_in(GUILD_ID, ON_TOPIC)).await;
    assert_eq!(kind, 4, "{answer:#}");
    let insight = answer["embeds"][0]["title"].as_str().unwrap().to_string();
    let yes = button_starting(&answer, "fb:");
    assert!(yes.ends_with(":y"), "{yes}");
    let no = yes.replace(":y", ":n");
    assert!(button_ids(&answer).contains(&no), "{answer:#}");
    let message = shown(&fake, &asked);
    eventually("the answer's record", &store, |s| {
        answers_recorded(s, UsageScope::Server(GUILD_ID), today()) == 1
    })
    .await;

    let alice = member(user(USER_ID, "alice", false), &[], None);
    let bob = fresh_member();
    assert!(click_as(&fake, &message, &yes, alice.clone())
        .await
        .starts_with("Thanks — noted as helpful"));
    assert!(click_as(&fake, &message, &yes, alice.clone())
        .await
        .starts_with("You already said"));
    assert!(click_as(&fake, &message, &no, alice.clone())
        .await
        .starts_with("Changed your vote to not what you needed"));
    assert!(click_as(&fake, &message, &no, bob)
        .await
        .starts_with("Thanks — noted as not what you needed"));

    let usage = store
        .blocking()
        .usage_stats(UsageScope::Server(GUILD_ID), today(), today())
        .unwrap();
    let id = catalog()
        .library()
        .insights()
        .iter()
        .find(|i| i.title == insight)
        .map(|i| i.id.clone())
        .unwrap();
    let row = usage.insights.iter().find(|i| i.id == id).unwrap();
    assert_eq!((row.helpful, row.not_helpful), (0, 2), "{usage:#?}");
    assert_eq!(row.shown, 1);
    // Gaps are off: the question's text is not kept, even with a "not helpful" vote.
    assert!(store
        .blocking()
        .gaps(GUILD_ID, today(), 100)
        .unwrap()
        .is_empty());
    // Nothing in the database holds who asked or voted: not alice's id, in any form.
    let mut db = std::fs::read(_dir.path().join("insight-bot.db")).unwrap();
    db.extend(std::fs::read(_dir.path().join("insight-bot.db-wal")).unwrap_or_default());
    for needle in [
        USER_ID.to_string().into_bytes(),
        USER_ID.to_le_bytes().to_vec(),
        USER_ID.to_be_bytes().to_vec(),
    ] {
        assert!(
            !db.windows(needle.len()).any(|w| w == needle.as_slice()),
            "the user id is in the database"
        );
    }
    stop(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_answer_carries_the_buttons_and_its_vote_counts_under_dms() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let bot = start_bot_with_store(&fake, store.clone()).await;
    let person = fresh_user();
    let mark = fake.mark();
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message_create(ON_TOPIC, person.clone()),
    )
    .await;
    let sent = fake
        .wait_for_channel_message_since(mark, DM_CHANNEL_ID, WAIT)
        .await;
    assert_eq!(sent.status, 200, "{}", sent.describe());
    let reply = fake
        .channel_messages(DM_CHANNEL_ID)
        .into_iter()
        .find(|m| m["author"]["id"].as_str().and_then(|id| id.parse().ok()) == Some(BOT_USER_ID))
        .expect("the answer in the DM channel");
    let yes = button_starting(&reply, "fb:");
    eventually("the DM answer's record", &store, |s| {
        answers_recorded(s, UsageScope::DirectMessages, today()) == 1
    })
    .await;
    assert_eq!(
        answers_recorded(&store, UsageScope::Server(GUILD_ID), today()),
        0
    );
    let click = button_click(&yes, reply.clone()).in_dm(person);
    let (_, kind, notice) = send(&fake, &click).await;
    assert_eq!(kind, 4);
    assert!(
        content(&notice).starts_with("Thanks — noted as helpful"),
        "{notice:#}"
    );
    let usage = store
        .blocking()
        .usage_stats(UsageScope::Everywhere, today(), today())
        .unwrap();
    assert_eq!(usage.insights.iter().map(|i| i.helpful).sum::<u64>(), 1);
    stop(&fake, bot).await;
}

/// A known history: 30 days ending on `until`, in the test guild, plus noise in another server
/// and in DMs that must not count.
fn record_history(store: &Store, until: NaiveDate) {
    let db = store.blocking();
    let mut next_id = 1_000u64;
    let mut answer = |guild: Option<u64>, day: NaiveDate, insight: Option<&str>| {
        next_id += 1;
        db.record_answers(&[NewAnswer {
            id: next_id,
            guild_id: guild,
            day,
            insight_id: insight.map(str::to_string),
            no_close_match: insight.is_none(),
            weak: false,
            question: None,
            question_vector: None,
        }])
        .unwrap();
        if let (Some(g), Some(i)) = (guild, insight) {
            db.record_shown(g, i, day).unwrap();
        }
        next_id
    };
    let day = |back: i64| until - chrono::Duration::days(back);
    // 12 answers with "trust-and-delegate" (6 voted: 5 helpful, 1 not), 3 with "fix-the-system"
    // (1 vote), 5 with no close match; 40 days ago (outside 30 days): 7 more that must not count.
    let mut delegate = Vec::new();
    for n in 0..12 {
        delegate.push(answer(
            Some(GUILD_ID),
            day(n * 2),
            Some("trust-and-delegate"),
        ));
    }
    for n in 0..3 {
        let id = answer(Some(GUILD_ID), day(n), Some("fix-the-system"));
        if n == 0 {
            db.record_vote(id, &[9; 32], Vote::Helpful, day(n)).unwrap();
        }
    }
    for n in 0..5 {
        answer(Some(GUILD_ID), day(n + 10), None);
    }
    for (n, id) in delegate.iter().take(6).enumerate() {
        let vote = if n == 0 {
            Vote::NotHelpful
        } else {
            Vote::Helpful
        };
        // Delegate answer n was given n * 2 days back; each vote is cast that day.
        db.record_vote(*id, &[n as u8; 32], vote, day(n as i64 * 2))
            .unwrap();
    }
    for _ in 0..7 {
        answer(Some(GUILD_ID), day(40), Some("fix-the-system"));
    }
    for _ in 0..9 {
        answer(Some(OTHER_GUILD), day(1), Some("fix-the-system"));
        answer(None, day(1), None);
    }
}

fn field<'a>(embed: &'a Value, name_start: &str) -> &'a str {
    embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().unwrap().starts_with(name_start))
        .unwrap_or_else(|| panic!("no field {name_start}: {embed:#}"))["value"]
        .as_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_show_a_known_history_with_a_png_chart_to_curators_only() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let now: DateTime<Utc> = "2026-11-26T12:00:00Z".parse().unwrap();
    record_history(&store, now.date_naive());
    let clock = Arc::new(ManualClock::new(now));
    let bot = start_bot_with_clock(&fake, store.clone(), clock).await;

    // A member without Manage Server is refused.
    let (_, _, refused) = send(
        &fake,
        &insights_cmd("stats", vec![]).in_guild(GUILD_ID, GENERAL_CHANNEL_ID, fresh_member()),
    )
    .await;
    assert!(content(&refused).contains("curator"), "{refused:#}");

    let (asked, kind, reply) = send(
        &fake,
        &insights_cmd("stats", vec![opt_int("days", 30)]).by_admin(),
    )
    .await;
    assert_eq!(kind, 4, "{reply:#}");
    let embed = &reply["embeds"][0];
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.starts_with("20 answered; 5 (25%) with no close match."),
        "{description}"
    );
    assert!(
        description.contains("2026-10-28 to 2026-11-26"),
        "{description}"
    );
    let most = field(embed, "Most shown");
    let lines: Vec<&str> = most.lines().collect();
    assert_eq!(lines.len(), 2, "{most}");
    assert!(lines[0].contains("`trust-and-delegate` — 12 ×"), "{most}");
    assert!(lines[1].contains("`fix-the-system` — 3 ×"), "{most}");
    let helpful = field(embed, "Helpful");
    assert!(
        helpful.contains("`trust-and-delegate` — 83% of 6 votes"),
        "{helpful}"
    );
    assert!(
        !helpful.contains("fix-the-system"),
        "under 5 votes: {helpful}"
    );
    let shipped = catalog().library().len();
    assert!(field(embed, &format!("Never shown ({})", shipped - 2)).contains('`'));
    assert_eq!(embed["image"]["url"], "attachment://answers-per-week.png");
    let files = fake.response_files(&asked);
    assert_eq!(files.len(), 1, "one chart");
    assert_eq!(files[0].filename, "answers-per-week.png");
    let decoder = png::Decoder::new(std::io::Cursor::new(files[0].bytes.clone()));
    let info = decoder.read_info().expect("a valid PNG").info().clone();
    assert_eq!((info.width, info.height), (800, 400));
    stop(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_are_kept_only_when_on_stay_in_their_server_become_an_insight_form_and_go_when_off() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let bot = start_bot_with_store(&fake, store.clone()).await;
    let day = today();

    // Off (the default): a question with no close match is counted, its text not kept.
    send(&fake, &advice_in(GUILD_ID, OFF_TOPIC)).await;
    eventually("the first answer", &store, |s| {
        answers_recorded(s, UsageScope::Server(GUILD_ID), day) == 1
    })
    .await;
    let (_, _, listing) = send(&fake, &insights_cmd("gaps", vec![]).by_admin()).await;
    assert!(content(&listing).starts_with("Gaps are off"), "{listing:#}");

    // On, here and in the other server; a member cannot turn it on.
    let (_, _, refused) = send(
        &fake,
        &insights_cmd("gaps", vec![opt_int("turn", 0)]).in_guild(
            GUILD_ID,
            GENERAL_CHANNEL_ID,
            fresh_member(),
        ),
    )
    .await;
    assert!(content(&refused).contains("curator"), "{refused:#}");
    let (_, _, on) = send(
        &fake,
        &insights_cmd("gaps", vec![opt_int("turn", 0)]).by_admin(),
    )
    .await;
    let on = content(&on);
    assert!(
        on.starts_with("Gaps are on.")
            && on.contains("for 30 days")
            && on.contains("without who asked"),
        "{on}"
    );
    let admin_elsewhere = insights_cmd("gaps", vec![opt_int("turn", 0)])
        .by_admin()
        .in_guild(OTHER_GUILD, GENERAL_CHANNEL_ID, member(ada(), &[], None));
    send(
        &fake,
        &admin_elsewhere.member_permissions(ADMIN_PERMISSIONS),
    )
    .await;

    send(&fake, &advice_in(GUILD_ID, OFF_TOPIC)).await;
    send(&fake, &advice_in(GUILD_ID, OFF_TOPIC_AGAIN)).await;
    send(
        &fake,
        &advice_in(OTHER_GUILD, "where can I buy cheap concert tickets"),
    )
    .await;
    // An answer that matched but was not what the member needed becomes a gap too.
    let (asked, _, matched) = send(&fake, &advice_in(GUILD_ID, ON_TOPIC)).await;
    eventually("four answers", &store, |s| {
        answers_recorded(s, UsageScope::Server(GUILD_ID), day) == 4
    })
    .await;
    let no = button_starting(&matched, "fb:").replace(":y", ":n");
    click_as(&fake, &shown(&fake, &asked), &no, fresh_member()).await;

    let (listed, _, listing) = send(&fake, &insights_cmd("gaps", vec![]).by_admin()).await;
    let embed = &listing["embeds"][0];
    let fields = embed["fields"].as_array().unwrap();
    assert_eq!(
        fields.len(),
        2,
        "the banana-bread group and the vote: {listing:#}"
    );
    assert!(
        fields[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("1. Asked 2 × (no close match)"),
        "{listing:#}"
    );
    assert!(
        fields[1]["value"]
            .as_str()
            .unwrap()
            .contains("micromanaging"),
        "{listing:#}"
    );
    assert!(
        fields[1]["name"]
            .as_str()
            .unwrap()
            .contains("not what I needed"),
        "{listing:#}"
    );
    let text = listing.to_string();
    assert!(
        !text.contains("concert"),
        "another server's gap: {listing:#}"
    );
    assert_no_pings(&listing);

    // Each kept question carries the vector its answer computed to search (the model's, 8-bit):
    // the listing grouped them without embedding anything.
    let embedder = Embedder::load_repository_model().unwrap();
    let kept = store
        .blocking()
        .gaps(GUILD_ID, day - chrono::Duration::days(30), 100)
        .unwrap();
    assert_eq!(kept.len(), 3);
    for gap in &kept {
        let stored = gap.vector.as_ref().expect("stored with its question");
        let vector = gap_vectors::decode(stored, embedder.fingerprint()).expect("this model's");
        let read = Question::read(&gap.question).unwrap();
        let exact = embedder.embed(&[read.normalised.as_str()]).unwrap()[0];
        assert!(cosine(&vector, &exact) > 0.99, "{}", gap.question);
    }

    // "Add an insight for this": the add form, the group's questions as its example questions.
    let add = button_starting(&listing, "ins:gap:");
    let listing_message = shown(&fake, &listed);
    let click = button_click(&add, listing_message.clone()).by_admin();
    let (_, kind, form) = send(&fake, &click).await;
    assert_eq!(kind, 9, "{form:#}");
    assert_eq!(form["custom_id"], "ins:add");
    let asks = form.to_string();
    assert!(
        asks.contains(OFF_TOPIC) && asks.contains(OFF_TOPIC_AGAIN),
        "{form:#}"
    );
    // A member who is not a curator cannot open it.
    let click =
        button_click(&add, listing_message).in_guild(GUILD_ID, GENERAL_CHANNEL_ID, fresh_member());
    let (_, _, refused) = send(&fake, &click).await;
    assert!(content(&refused).contains("curator"), "{refused:#}");

    // Off deletes what was kept, at once; the other server keeps its own.
    let (_, _, off) = send(
        &fake,
        &insights_cmd("gaps", vec![opt_int("turn", 1)]).by_admin(),
    )
    .await;
    assert!(
        content(&off).contains("the 3 kept questions were deleted"),
        "{off:#}"
    );
    assert!(store
        .blocking()
        .gaps(GUILD_ID, day - chrono::Duration::days(30), 100)
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .blocking()
            .gaps(OTHER_GUILD, day - chrono::Duration::days(30), 100)
            .unwrap()
            .len(),
        1
    );
    stop(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_clears_gaps_after_30_days_and_answers_after_a_year_on_the_manual_clock() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let start: DateTime<Utc> = "2026-01-10T12:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let bot = start_bot_with_clock(&fake, store.clone(), clock.clone()).await;
    let first_day = start.date_naive();
    send(
        &fake,
        &insights_cmd("gaps", vec![opt_int("turn", 0)]).by_admin(),
    )
    .await;
    send(&fake, &advice_in(GUILD_ID, OFF_TOPIC)).await;
    let (asked, _, answer) = send(&fake, &advice_in(GUILD_ID, ON_TOPIC)).await;
    eventually("the gap", &store, |s| {
        s.blocking().gaps(GUILD_ID, first_day, 10).unwrap().len() == 1
    })
    .await;
    eventually("both answers", &store, |s| {
        answers_recorded(s, UsageScope::Server(GUILD_ID), first_day) == 2
    })
    .await;
    let message = shown(&fake, &asked);
    let yes = button_starting(&answer, "fb:");

    let db_file = _dir.path().join("insight-bot.db");
    let voter_keys = || -> i64 {
        rusqlite::Connection::open(&db_file)
            .unwrap()
            .query_row("SELECT count(*) FROM answer_vote", [], |r| r.get(0))
            .unwrap()
    };
    // Within a week the answer can be rated, and the vote changed.
    clock.advance(chrono::Duration::days(3));
    let voter = fresh_member();
    assert!(click_as(&fake, &message, &yes, voter.clone())
        .await
        .starts_with("Thanks"));
    assert_eq!(voter_keys(), 1);
    // After it, votes are final: the daily pass deletes the voter keys, the counts stay.
    clock.advance(chrono::Duration::days(5));
    let deadline = Instant::now() + WAIT;
    while voter_keys() != 0 {
        assert!(Instant::now() < deadline, "the voter key was not deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let said = click_as(&fake, &message, &yes.replace(":y", ":n"), voter).await;
    assert!(
        said.starts_with("Votes on this answer closed 7 days"),
        "{said}"
    );
    // 29 days on: the gap is still kept.
    clock.advance(chrono::Duration::days(21));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store
            .blocking()
            .gaps(GUILD_ID, first_day, 10)
            .unwrap()
            .len(),
        1
    );
    // 31 days on: the daily pass clears the question; the count stays.
    clock.advance(chrono::Duration::days(2));
    eventually("the gap's question cleared", &store, |s| {
        s.blocking()
            .gaps(GUILD_ID, first_day, 10)
            .unwrap()
            .is_empty()
    })
    .await;
    assert_eq!(
        answers_recorded(&store, UsageScope::Server(GUILD_ID), first_day),
        2
    );
    // A year on, the answer's row is deleted too; its counts (and the vote) stay in the totals.
    clock.advance(chrono::Duration::days(340));
    // The daily pass runs as soon as the clock has passed its instant. It used to be given one
    // fixed second, which a loaded machine sometimes missed; a click changes nothing on a closed
    // answer, so ask again until the pass has run (or the deadline).
    let deadline = Instant::now() + WAIT;
    let mut said = click_as(&fake, &message, &yes, fresh_member()).await;
    while !said.contains("too old") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        said = click_as(&fake, &message, &yes, fresh_member()).await;
    }
    assert!(
        said.contains("too old"),
        "the year-old answer is still rated: {said}"
    );
    let usage = store
        .blocking()
        .usage_stats(UsageScope::Server(GUILD_ID), first_day, first_day)
        .unwrap();
    assert_eq!(usage.days.iter().map(|d| d.answers).sum::<u64>(), 2);
    assert_eq!(usage.days.iter().map(|d| d.no_close_match).sum::<u64>(), 1);
    assert_eq!(usage.insights.iter().map(|i| i.helpful).sum::<u64>(), 1);
    stop(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_faster_than_the_answers_record_still_counts() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let bot = start_bot_with_store(&fake, store.clone()).await;
    let (asked, _, _) = send(&fake, &advice_in(GUILD_ID, ON_TOPIC)).await;
    let message = shown(&fake, &asked);
    eventually("the answer's record", &store, |s| {
        answers_recorded(s, UsageScope::Server(GUILD_ID), today()) == 1
    })
    .await;
    // The same message, as if its answer were not written yet: a button for an id that is
    // recorded only 300 ms after the click.
    let late_id = 4_000_000_000_000u64;
    let button = format!("fb:{late_id}:y");
    let mut early = message.clone();
    early["components"][0]["components"][0]["custom_id"] = Value::from(button.clone());
    let writer = store.clone();
    let record_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        writer
            .call(move |db| {
                db.record_answers(&[NewAnswer {
                    id: late_id,
                    guild_id: Some(GUILD_ID),
                    day: today(),
                    insight_id: Some("trust-and-delegate".into()),
                    no_close_match: false,
                    weak: false,
                    question: None,
                    question_vector: None,
                }])
            })
            .await
            .unwrap();
    });
    let said = click_as(&fake, &early, &button, fresh_member()).await;
    record_later.await.unwrap();
    assert!(said.starts_with("Thanks — noted as helpful"), "{said}");
    stop(&fake, bot).await;
}
