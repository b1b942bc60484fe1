//! End-to-end tests of the insight of the week: the real bot (`insight_bot::bot::start`) runs
//! against the fake Discord (`tests/support`) with a `ManualClock`, an admin drives it with
//! `/weekly set|show|off|post-now` INTERACTION_CREATE dispatches, the test moves the clock by
//! hand, and each test asserts on what reaches Discord: the ephemeral replies, and the weekly
//! post itself (`POST /channels/{id}/messages`, sent by the `DiscordPublisher` with a nonce and
//! `enforce_nonce`). The poster's rules (exactly one post per server and week, catch-up after
//! downtime, resolving an unconfirmed send, pausing on 403) are unit-tested on the core with a
//! fake publisher in `tests/poster.rs`; here the same promises are checked through the real
//! adapter and HTTP: restarts on the same SQLite file, a 500, a 403, a gateway RESUME. Every
//! test uses its own fake, clock and temporary database, waits with timeouts that say what never
//! arrived, and ends by asserting that every request body was valid against Discord's OpenAPI
//! spec (when `DISCORD_OPENAPI_SPEC` is set) and Discord's limits.
//!
//! The test week is ISO week 48 of 2026: Monday 23 November, when Europe/London is on GMT, so the
//! schedule "Monday 09:00 Europe/London" posts at 2026-11-23T09:00:00Z.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use insight_bot::bot::{self, BotSettings, RunningBot};
use insight_bot::config::Token;
use insight_bot::insights::Insight;
use insight_bot::store::{Claim, FeedSettings, FeedSpec, PostRecord, PostSource, Store};
use insight_bot::weekly::clock::{Clock, ManualClock};
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::poster::PosterOptions;
use insight_bot::weekly::schedule::{Period, Schedule, WeekKey};
use serde_json::{json, Value};
use support::bot::library;
use support::payloads::{
    self, opt_bool, opt_channel, opt_string, opt_subcommand, slash_command, InteractionBuilder,
    TestGuild, ADMIN_ROLE_ID, APP_ID, BOT_USER_ID, EMBED_LINKS, EVERYONE_ROLE_ID, FORUM_CHANNEL_ID,
    GENERAL_CHANNEL_ID, GUILD_ID, MANAGE_GUILD, MEMBER_PERMISSIONS, PING_ROLE_ID, QUIET_ROLE_ID,
    SEND_MESSAGES, WEEKLY_CHANNEL_ID,
};
use support::{FakeDiscord, FaultKind, RecordedRequest, TOKEN, WAIT};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// The test world

/// The weekly post's embed title, as people see it.
const WEEKLY_TITLE: &str = "Leadership insight of the week";
/// How soon the post must follow the clock reaching its slot.
const PROMPT: Duration = Duration::from_secs(2);
/// How long "nothing happens" is watched for.
const QUIET: Duration = Duration::from_secs(1);
/// The ephemeral bit of message flags.
const EPHEMERAL: u64 = 1 << 6;

/// Sunday noon, the day before the slot: where most tests start.
const SUNDAY_NOON: &str = "2026-11-22T12:00:00Z";
/// Monday 2026-11-23 09:00 in Europe/London (GMT): the slot of ISO week 48.
const SLOT: &str = "2026-11-23T09:00:00Z";
const WEEK: Period = Period::Week(WeekKey {
    year: 2026,
    week: 48,
});
/// The feed of #weekly in the test server.
const FEED: FeedId = FeedId {
    guild_id: GUILD_ID,
    channel_id: WEEKLY_CHANNEL_ID,
};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad instant {rfc3339}: {e}"))
        .with_timezone(&Utc)
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// "Mondays at 09:00 in Europe/London".
fn monday_9_london() -> Schedule {
    Schedule::parse("monday", "09:00", "Europe/London").expect("a valid schedule")
}

/// The insight whose full text is `text`.
fn insight_with_text(text: &str) -> Insight {
    library()
        .insights()
        .iter()
        .find(|i| i.text == text)
        .unwrap_or_else(|| panic!("the post's description is no insight's full text: {text:?}"))
        .clone()
}

/// Fast retries, so a 500 costs milliseconds, and a short request timeout, so a test can reach it.
fn fast_options() -> PosterOptions {
    PosterOptions {
        first_backoff: Duration::from_millis(20),
        retry_later: Duration::from_secs(60),
        request_timeout: REQUEST_TIMEOUT,
        ..Default::default()
    }
}

/// The weekly publisher's request timeout in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The period label of the footer: "Week 48 · 2026", "Monday 23 November 2026".
fn week_label(period: Period) -> String {
    match period {
        Period::Week(week) => format!("Week {} · {}", week.week, week.year),
        Period::Day(day) => day.format("%A %-d %B %Y").to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The harness: one fake, one manual clock, one database file, the bot started and restarted on
// them.

struct Harness {
    fake: FakeDiscord,
    clock: Arc<ManualClock>,
    db: PathBuf,
    store: Store,
    bot: Option<RunningBot>,
    _dir: TempDir,
}

impl Harness {
    /// A fake Discord, a clock at `now` and a fresh database; the bot is not started.
    async fn new(now: &str) -> Harness {
        Harness::with_fake(now, FakeDiscord::start().await)
    }

    /// `new` on a given fake (more servers, say).
    fn with_fake(now: &str, fake: FakeDiscord) -> Harness {
        Harness::with_database(now, fake, |_| {})
    }

    /// `with_fake`, on a database file that `prepare` writes first (one an older version left).
    fn with_database(
        now: &str,
        fake: FakeDiscord,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Harness {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("insight-bot.db");
        prepare(&db);
        let store = Store::open(&db).unwrap_or_else(|e| panic!("open {db:?}: {e}"));
        Harness {
            fake,
            clock: Arc::new(ManualClock::new(at(now))),
            db,
            store,
            bot: None,
            _dir: dir,
        }
    }

    /// `new` and `start`.
    async fn started(now: &str) -> Harness {
        let mut h = Harness::new(now).await;
        h.start().await;
        h
    }

    /// Starts the bot on the current database file and waits until it has identified and
    /// registered its commands (poise handles no interaction before that).
    async fn start(&mut self) {
        assert!(self.bot.is_none(), "the bot is running already");
        let mark = self.fake.mark();
        let identifies = self.fake.gateway_stats().identifies;
        let settings = BotSettings {
            token: Token::parse(TOKEN).expect("the fake's token parses"),
            catalog: support::bot::catalog(),
            guild_id: None,
            api_base: Some(self.fake.base_url()),
            store: self.store.clone(),
            clock: Arc::clone(&self.clock) as Arc<dyn Clock>,
            poster_options: fast_options(),
            metrics_addr: None,
        };
        let bot = match tokio::time::timeout(WAIT, bot::start(settings)).await {
            Ok(Ok(bot)) => bot,
            Ok(Err(e)) => panic!("the bot did not start: {e}"),
            Err(_) => panic!("insight_bot::bot::start did not return within {WAIT:?}"),
        };
        self.bot = Some(bot);
        self.fake
            .wait_for_gateway("the bot's IDENTIFY answered with READY", WAIT, |s| {
                s.identifies > identifies && s.session_live
            })
            .await;
        let route = format!("/applications/{APP_ID}/commands");
        self.fake
            .wait_for_request_since(
                mark,
                &format!("the command registration (PUT {route}) answered 200"),
                WAIT,
                |r| r.is("PUT", &route) && r.status == 200,
            )
            .await;
    }

    /// Shuts the bot down cleanly (within [`WAIT`]).
    async fn stop(&mut self) {
        let bot = self.bot.take().expect("the bot is running");
        match tokio::time::timeout(WAIT, bot.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("RunningBot::shutdown returned an error: {e}"),
            Err(_) => panic!("RunningBot::shutdown did not return within {WAIT:?}"),
        }
    }

    /// A process restart: stop, open the same database file again, start.
    async fn restart(&mut self) {
        self.stop().await;
        self.store = Store::open(&self.db).unwrap_or_else(|e| panic!("reopen {:?}: {e}", self.db));
        self.start().await;
    }

    /// Stops the bot and checks every request body it sent.
    async fn finish(mut self) {
        if self.bot.is_some() {
            self.stop().await;
        }
        self.fake.assert_all_bodies_valid();
    }

    fn bot(&self) -> &RunningBot {
        self.bot.as_ref().expect("the bot is running")
    }

    /// One pass of the running bot's poster, run to completion: after it, whatever was due has
    /// been sent (a barrier before checking that nothing was).
    async fn poster_pass(&self) {
        let poster = self.bot().poster();
        tokio::time::timeout(WAIT, async {
            poster.tick().await?;
            poster.wait_idle().await;
            Ok::<_, insight_bot::store::StoreError>(())
        })
        .await
        .unwrap_or_else(|_| panic!("a weekly poster pass did not finish within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("the weekly poster could not read the store: {e}"));
    }

    // -- interactions -----------------------------------------------------------------------

    /// Dispatches `interaction` and returns the text of the bot's (only) reply, after checking
    /// that it is ephemeral and pings nobody. A deferred reply (callback type 5) is followed to
    /// the follow-up message that completes it.
    async fn reply(&self, interaction: &Value) -> String {
        let message = self.reply_message(interaction).await;
        message["content"]
            .as_str()
            .unwrap_or_else(|| panic!("the reply has no text: {message:#}"))
            .to_string()
    }

    /// [`Harness::reply`]'s message itself (its content, embeds, flags).
    async fn reply_message(&self, interaction: &Value) -> Value {
        let mark = self.fake.mark();
        self.fake
            .dispatch("INTERACTION_CREATE", interaction.clone())
            .await;
        let callback = self.fake.wait_for_callback(interaction, WAIT).await;
        let body = callback.json();
        assert_eq!(
            callback.status,
            204,
            "the callback was refused: {}\n  body: {}",
            callback.describe(),
            callback.body_text()
        );
        let data = &body["data"];
        assert_ne!(
            data["flags"].as_u64().unwrap_or(0) & EPHEMERAL,
            0,
            "the /weekly reply must be ephemeral: {body:#}"
        );
        let message = match body["type"].as_u64() {
            Some(4) => data.clone(),
            Some(5) => {
                let token = interaction["token"].as_str().expect("token");
                let webhook = format!("/webhooks/{APP_ID}/{token}");
                self.fake
                    .wait_for_request_since(
                        mark,
                        &format!("the reply completing the deferred interaction ({webhook})"),
                        WAIT,
                        |r| r.is("*", &webhook) && r.method != "GET",
                    )
                    .await
                    .json()
                    .clone()
            }
            other => panic!("unexpected callback type {other:?}: {body:#}"),
        };
        assert_eq!(
            message["allowed_mentions"]["parse"],
            json!([]),
            "a reply must ping nobody: {message:#}"
        );
        message
    }

    /// `/weekly list`: the text of its embed.
    async fn list(&self) -> String {
        let message = self.reply_message(&weekly("list", vec![]).build()).await;
        message["embeds"][0]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("/weekly list has no embed: {message:#}"))
            .to_string()
    }

    /// `/weekly preview`: its text, and the id of the insight its embed shows.
    async fn preview(&self) -> (String, Option<String>) {
        let message = self.reply_message(&weekly("preview", vec![]).build()).await;
        let insight = message["embeds"][0]["description"]
            .as_str()
            .map(|text| insight_with_text(text).id);
        (
            message["content"].as_str().unwrap_or_default().to_string(),
            insight,
        )
    }

    /// `/weekly <sub> <options>` by the admin (Manage Server), answered; its text.
    async fn weekly(&self, sub: &str, options: Vec<Value>) -> String {
        self.reply(&weekly(sub, options).build()).await
    }

    /// The value Discord sends for `day:<name>` of `/weekly set` (poise registers the days as
    /// integer choices), read from the registered command.
    fn day(&self, name: &str) -> Value {
        self.choice("day", name)
    }

    /// The value Discord sends for choice `name` of option `option` of `/weekly set` (poise
    /// registers choices as integers), read from the registered command.
    fn choice(&self, option: &str, name: &str) -> Value {
        let commands = self.fake.registered_commands(None);
        let choices = weekly_command(&commands)["options"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["name"] == "set")
            .and_then(|set| set["options"].as_array())
            .into_iter()
            .flatten()
            .find(|o| o["name"] == option)
            .unwrap_or_else(|| panic!("/weekly set has no {option} option: {commands:#?}"))
            ["choices"]
            .clone();
        let choice = choices
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{option}:{name} is not a choice: {choices}"))
            .clone();
        let mut value = json!({"name": option, "type": 4});
        value["value"] = choice["value"].clone();
        value
    }

    /// `/weekly set channel:#weekly day:Monday time:09:00 timezone:Europe/London`; its text.
    async fn set_monday_9_london(&self) -> String {
        let options = vec![
            opt_channel("channel", WEEKLY_CHANNEL_ID),
            self.day("Monday"),
            opt_string("time", "09:00"),
            opt_string("timezone", "Europe/London"),
        ];
        self.weekly("set", options).await
    }

    // -- the weekly channel -----------------------------------------------------------------

    /// The weekly posts (`POST /channels/{weekly}/messages`) from `mark` on.
    fn posts_since(&self, mark: usize) -> Vec<RecordedRequest> {
        self.fake
            .requests()
            .into_iter()
            .skip(mark)
            .filter(is_weekly_post)
            .collect()
    }

    /// Waits (briefly: the poster must be prompt) for the `n`th weekly post from `mark` on.
    async fn wait_for_post(&self, mark: usize, n: usize, why: &str) -> RecordedRequest {
        let mut from = mark;
        let mut found = None;
        for i in 1..=n {
            let what = format!(
                "weekly post #{i} (POST /channels/{WEEKLY_CHANNEL_ID}/messages) {why}, within {PROMPT:?}"
            );
            let post = self
                .fake
                .wait_for_request_since(from, &what, PROMPT, is_weekly_post)
                .await;
            from = post.index + 1;
            found = Some(post);
        }
        found.expect("n >= 1")
    }

    /// Asserts that no weekly post arrives from `mark` on, watching for [`QUIET`].
    async fn assert_no_post_since(&self, mark: usize, why: &str) {
        self.fake
            .assert_no_request_since(
                mark,
                &format!("weekly post to #weekly {why}"),
                QUIET,
                is_weekly_post,
            )
            .await;
    }

    /// The messages in #weekly whose embed is a weekly post (as the fake stores them).
    fn weekly_messages(&self) -> Vec<Value> {
        self.fake
            .channel_messages(WEEKLY_CHANNEL_ID)
            .into_iter()
            .filter(|m| {
                m["embeds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["title"] == WEEKLY_TITLE)
            })
            .collect()
    }

    // -- the store ----------------------------------------------------------------------------

    fn settings(&self) -> Option<FeedSettings> {
        self.store
            .blocking()
            .feed(FEED)
            .unwrap_or_else(|e| panic!("read the weekly settings: {e}"))
    }

    fn post(&self, week: Period) -> Option<PostRecord> {
        self.store
            .blocking()
            .post(FEED, week)
            .unwrap_or_else(|e| panic!("read the post of {week}: {e}"))
    }

    /// Waits until the post of `week` is confirmed in the store; its record.
    async fn wait_for_confirmed(&self, week: Period, why: &str) -> PostRecord {
        let mut record = None;
        wait_until(
            &format!("the post of {week} confirmed in the store {why}"),
            || {
                record = self.post(week).filter(PostRecord::is_confirmed);
                record.is_some()
            },
        )
        .await;
        record.expect("checked above")
    }
}

/// Polls `done` every 10 ms until it holds; panics after [`WAIT`] saying `what` never happened.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > WAIT {
            panic!("timed out after {WAIT:?}: {what} never happened");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_weekly_post(r: &RecordedRequest) -> bool {
    r.method == "POST" && r.path == format!("/api/v10/channels/{WEEKLY_CHANNEL_ID}/messages")
}

/// `/weekly <sub>` by ada, the admin (Manage Server), in #general.
fn weekly(sub: &str, options: Vec<Value>) -> InteractionBuilder {
    slash_command("weekly", vec![opt_subcommand(sub, options)]).by_admin()
}

/// The registered `/weekly` command.
fn weekly_command(commands: &[Value]) -> &Value {
    commands
        .iter()
        .find(|c| c["name"] == "weekly")
        .unwrap_or_else(|| panic!("/weekly is not registered: {commands:#?}"))
}

/// Checks a weekly post's body: the fixed title, an insight's full text, the week's footer, no
/// pings, a nonce Discord accepts with `enforce_nonce`. Returns the insight.
fn check_post_body(post: &RecordedRequest, week: Period) -> Insight {
    let body = post.json();
    let embeds = body["embeds"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    assert_eq!(embeds.len(), 1, "the weekly post has one embed: {body:#}");
    let embed = &embeds[0];
    assert_eq!(embed["title"], WEEKLY_TITLE, "{body:#}");
    let insight = insight_with_text(embed["description"].as_str().unwrap_or_default());
    assert_eq!(embed["footer"]["text"], week_label(week), "{body:#}");
    assert_eq!(
        body["allowed_mentions"]["parse"],
        json!([]),
        "the weekly post must ping nobody: {body:#}"
    );
    let nonce = body["nonce"]
        .as_str()
        .unwrap_or_else(|| panic!("the weekly post needs a string nonce: {body:#}"));
    assert!(
        !nonce.is_empty() && nonce.chars().count() <= 25,
        "Discord takes nonces of at most 25 characters: {nonce:?}"
    );
    assert_eq!(body["enforce_nonce"], true, "{body:#}");
    insight
}

/// A message the bot posted in an earlier run: its weekly post of `week` in #weekly.
fn earlier_weekly_post(week: Period, nonce: &str) -> (u64, Value) {
    let id = payloads::next_snowflake();
    let mut message = payloads::message(
        id,
        WEEKLY_CHANNEL_ID,
        Some(GUILD_ID),
        payloads::bot_user(),
        "",
    );
    let library = library();
    let insight = &library.insights()[0];
    message["embeds"] = json!([{
        "type": "rich",
        "title": WEEKLY_TITLE,
        "description": insight.text,
        "footer": {"text": week_label(week)},
    }]);
    message["nonce"] = json!(nonce);
    (id, message)
}

/// The schedule as an earlier run stored it: Monday 09:00 London in #weekly, active since
/// `since`.
fn store_schedule(store: &Store, since: &str) {
    store
        .blocking()
        .set_feed(FEED, &FeedSpec::plain(monday_9_london()), at(since))
        .unwrap_or_else(|e| panic!("set the schedule: {e}"));
}

/// A claim of `week` whose send was started (`record_attempt` with no error) but never
/// confirmed: what a crash between the send and its confirmation leaves.
fn store_started_send(store: &Store, week: Period, now: &str) -> PostRecord {
    let library = library();
    let ids: Vec<&str> = library.insights().iter().map(|i| i.id.as_str()).collect();
    let claim = store
        .blocking()
        .claim(
            FEED,
            week,
            &ids,
            PostSource::Schedule,
            &mut rand::thread_rng(),
            at(now),
        )
        .unwrap_or_else(|e| panic!("claim {week}: {e}"));
    assert!(matches!(claim, Some(Claim::Claimed(_))), "{claim:?}");
    store
        .blocking()
        .record_attempt(FEED, week, at(now), None, None)
        .unwrap_or_else(|e| panic!("record the attempt: {e}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Set up, then the post at the slot

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_confirms_the_schedule_and_the_slot_posts_exactly_once() {
    let h = Harness::started(SUNDAY_NOON).await;

    let text = h.set_monday_9_london().await;
    let slot = at(SLOT);
    for part in [
        "Monday at 09:00".to_string(),
        "Europe/London".to_string(),
        format!("<#{WEEKLY_CHANNEL_ID}>"),
        // The next post, in the server's zone and as a Discord timestamp.
        "Monday 23 November 2026, 09:00 GMT".to_string(),
        format!("<t:{}:F>", slot.timestamp()),
    ] {
        assert!(
            text.contains(&part),
            "the confirmation should contain {part:?}: {text}"
        );
    }
    let settings = h.settings().expect("the schedule is stored");
    assert_eq!(
        (
            settings.feed.channel_id,
            settings.schedule,
            settings.enabled
        ),
        (WEEKLY_CHANNEL_ID, monday_9_london(), true)
    );

    let mark = h.fake.mark();
    h.clock.set(slot);
    let post = h
        .wait_for_post(mark, 1, "when the clock reaches Monday 09:00 London")
        .await;
    assert_eq!(post.status, 200, "{}", post.describe());
    let insight = check_post_body(&post, WEEK);
    let record = h.wait_for_confirmed(WEEK, "after the post").await;
    assert_eq!(
        record.insight_id, insight.id,
        "the claimed insight is posted"
    );
    assert_eq!(post.json()["nonce"], record.nonce.as_str());
    let messages = h.weekly_messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        record.message_id.map(|id| id.to_string()).as_deref(),
        messages[0]["id"].as_str(),
        "the store confirms the message Discord created"
    );

    // Minutes later: still exactly one.
    h.clock.advance(minutes(5));
    h.poster_pass().await;
    h.assert_no_post_since(post.index + 1, "after the week's post")
        .await;
    assert_eq!(h.posts_since(mark).len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Invalid input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_time_or_zone_is_refused_with_an_example_and_nothing_is_stored() {
    let h = Harness::started(SUNDAY_NOON).await;
    for (time, zone, bad, example) in [
        ("25:00", "Europe/London", "25:00", "09:00"),
        ("9am", "Europe/London", "9am", "09:00"),
        ("09:00", "Mars/Olympus", "Mars/Olympus", "Europe/London"),
    ] {
        let options = vec![
            opt_channel("channel", WEEKLY_CHANNEL_ID),
            h.day("Monday"),
            opt_string("time", time),
            opt_string("timezone", zone),
        ];
        let text = h.weekly("set", options).await;
        assert!(
            text.contains(bad) && text.contains(example),
            "time:{time} timezone:{zone} should be refused naming {bad:?} with an example \
             ({example:?}): {text}"
        );
        assert!(!text.contains("Done"), "{text}");
        assert!(h.settings().is_none(), "nothing may be stored for {bad:?}");
    }
    let shown = h.weekly("show", vec![]).await;
    assert!(
        shown.contains("No scheduled posts are set up"),
        "/weekly show after refused input: {shown}"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Permissions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_names_exactly_the_permissions_the_bot_lacks_in_the_channel() {
    let h = Harness::started(SUNDAY_NOON).await;
    let channel = || payloads::guild_text_channel(WEEKLY_CHANNEL_ID, GUILD_ID, "weekly");

    // A member overwrite for the bot denies both.
    h.fake.add_channel(payloads::with_overwrite(
        channel(),
        BOT_USER_ID,
        1,
        0,
        SEND_MESSAGES | EMBED_LINKS,
    ));
    let text = h.set_monday_9_london().await;
    assert!(
        text.contains("Send Messages") && text.contains("Embed Links"),
        "the reply should name Send Messages and Embed Links: {text}"
    );
    assert!(!text.contains("View Channel"), "{text}");
    assert!(h.settings().is_none(), "nothing may be stored");

    // The @everyone role (the bot's only role) may not embed links: only that is missing.
    h.fake.add_channel(payloads::with_overwrite(
        channel(),
        EVERYONE_ROLE_ID,
        0,
        0,
        EMBED_LINKS,
    ));
    let text = h.set_monday_9_london().await;
    assert!(text.contains("Embed Links"), "{text}");
    assert!(
        !text.contains("Send Messages") && !text.contains("View Channel"),
        "only Embed Links is missing: {text}"
    );
    assert!(h.settings().is_none(), "nothing may be stored");

    // An admin role overwrite does not concern the bot: set works.
    h.fake.add_channel(payloads::with_overwrite(
        channel(),
        ADMIN_ROLE_ID,
        0,
        0,
        SEND_MESSAGES,
    ));
    let text = h.set_monday_9_london().await;
    assert!(text.contains("Done"), "{text}");
    assert!(h.settings().is_some());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_needs_manage_server_and_is_registered_for_servers_only() {
    let h = Harness::started(SUNDAY_NOON).await;

    let commands = h.fake.registered_commands(None);
    let command = weekly_command(&commands);
    assert_eq!(
        command["default_member_permissions"],
        MANAGE_GUILD.to_string(),
        "/weekly is hidden from members without Manage Server: {command:#}"
    );
    assert_eq!(command["contexts"], json!([0]), "guild only: {command:#}");

    // alice has the ordinary member permissions, without Manage Server.
    assert_eq!(MEMBER_PERMISSIONS & MANAGE_GUILD, 0);
    let options = vec![
        opt_channel("channel", WEEKLY_CHANNEL_ID),
        h.day("Monday"),
        opt_string("time", "09:00"),
        opt_string("timezone", "Europe/London"),
    ];
    let by_member = slash_command("weekly", vec![opt_subcommand("set", options)])
        .member_permissions(MEMBER_PERMISSIONS)
        .build();
    let text = h.reply(&by_member).await;
    assert!(
        text.contains("Manage Server") && !text.contains("Manage Guild"),
        "the refusal should name the Manage Server permission: {text}"
    );
    assert!(!text.contains("Done"), "{text}");
    assert!(h.settings().is_none(), "nothing may be stored");
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 4. A restart after a send that was started but never confirmed

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_an_unconfirmed_send_that_reached_the_channel_does_not_post_again() {
    let mut h = Harness::new("2026-11-23T09:20:00Z").await;
    store_schedule(&h.store, "2026-11-20T10:00:00Z");
    let claim = store_started_send(&h.store, WEEK, "2026-11-23T09:00:00Z");
    // What the channel holds: last week's post, someone quoting the title, and this week's post
    // that the earlier run sent but never confirmed.
    let (_, last_week) = earlier_weekly_post(
        WeekKey {
            year: 2026,
            week: 47,
        }
        .into(),
        "older",
    );
    h.fake.add_message(last_week);
    let (sent_id, sent) = earlier_weekly_post(WEEK, &claim.nonce);
    h.fake.add_message(sent);
    let mut quote = payloads::message(
        payloads::next_snowflake(),
        WEEKLY_CHANNEL_ID,
        Some(GUILD_ID),
        payloads::alice(),
        "",
    );
    quote["embeds"] =
        json!([{"type": "rich", "title": WEEKLY_TITLE, "footer": {"text": week_label(WEEK)}}]);
    h.fake.add_message(quote);

    h.start().await;
    let record = h
        .wait_for_confirmed(WEEK, "from the message found in #weekly")
        .await;
    assert_eq!(
        record.message_id,
        Some(sent_id),
        "the bot's own post of this week is the one confirmed"
    );
    let read = h
        .fake
        .requests_matching(|r| r.is("GET", &format!("/channels/{WEEKLY_CHANNEL_ID}/messages")));
    assert!(
        !read.is_empty(),
        "the bot should have read #weekly's recent messages"
    );
    h.assert_no_post_since(0, "when this week's post is already in the channel")
        .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_an_unconfirmed_send_that_never_arrived_posts_once_with_the_same_nonce() {
    let mut h = Harness::new("2026-11-23T09:20:00Z").await;
    store_schedule(&h.store, "2026-11-20T10:00:00Z");
    let claim = store_started_send(&h.store, WEEK, "2026-11-23T09:00:00Z");

    h.start().await;
    let post = h
        .wait_for_post(0, 1, "for the claim an earlier run never got out")
        .await;
    let insight = check_post_body(&post, WEEK);
    assert_eq!(insight.id, claim.insight_id, "the claimed insight is sent");
    assert_eq!(
        post.json()["nonce"],
        claim.nonce.as_str(),
        "the claim's nonce"
    );
    let record = h.wait_for_confirmed(WEEK, "after the resend").await;
    assert!(record.message_id.is_some());
    h.poster_pass().await;
    h.assert_no_post_since(post.index + 1, "after the resend")
        .await;
    assert_eq!(h.weekly_messages().len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Down across the slot

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_across_the_slot_catches_up_once_and_a_restart_does_not_post_again() {
    // The schedule was set on Friday; the bot was down from before the slot until the afternoon.
    let mut h = Harness::new("2026-11-23T15:00:00Z").await;
    store_schedule(&h.store, "2026-11-20T10:00:00Z");

    h.start().await;
    let post = h.wait_for_post(0, 1, "catching up this week's slot").await;
    check_post_body(&post, WEEK);
    h.wait_for_confirmed(WEEK, "after the catch-up post").await;

    h.clock.advance(minutes(60));
    h.restart().await;
    h.poster_pass().await;
    h.assert_no_post_since(post.index + 1, "after a restart in the same week")
        .await;
    assert_eq!(h.posts_since(0).len(), 1);
    assert_eq!(h.weekly_messages().len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 6. A server error, then success

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_then_success_posts_exactly_one_message() {
    let h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;
    h.fake.fail_next(
        "POST",
        &format!("/channels/{WEEKLY_CHANNEL_ID}/messages"),
        1,
        500,
    );

    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let first = h.wait_for_post(mark, 1, "at the slot").await;
    let second = h.wait_for_post(mark, 2, "retrying after the 500").await;
    assert_eq!((first.status, second.status), (500, 200));
    assert_eq!(
        first.json()["nonce"],
        second.json()["nonce"],
        "a retry of the same post carries the same nonce"
    );
    assert_eq!(
        first.json(),
        second.json(),
        "the retry resends the same post"
    );
    check_post_body(&second, WEEK);
    let record = h.wait_for_confirmed(WEEK, "after the retry").await;
    let messages = h.weekly_messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        record.message_id.map(|id| id.to_string()).as_deref(),
        messages[0]["id"].as_str()
    );
    h.poster_pass().await;
    h.assert_no_post_since(second.index + 1, "after the successful retry")
        .await;
    h.finish().await;
}

/// The slot posts while `fault` hits the first send *after* Discord created the message: the
/// bot never learns the message id, resends the same post with the same nonce, and Discord (the
/// fake, as strict) answers with the first message. Exactly one post, confirmed with that id.
async fn the_answer_is_lost_after_creation_yet_one_post(fault: FaultKind, what: &str) {
    let h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;
    h.fake.add_fault(
        "POST",
        &format!("/channels/{WEEKLY_CHANNEL_ID}/messages"),
        1,
        fault,
    );
    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let first = h.wait_for_post(mark, 1, "at the slot").await;
    let second = h.wait_for_post(mark, 2, &format!("after {what}")).await;
    assert_eq!(first.json(), second.json(), "the same post, the same nonce");
    assert_eq!(second.status, 200, "{}", second.describe());
    let record = h.wait_for_confirmed(WEEK, &format!("after {what}")).await;
    let messages = h.weekly_messages();
    assert_eq!(
        messages.len(),
        1,
        "exactly one post after {what}: {messages:#?}"
    );
    assert_eq!(
        record.message_id.map(|id| id.to_string()).as_deref(),
        messages[0]["id"].as_str(),
        "confirmed with the message Discord created first"
    );
    h.poster_pass().await;
    h.assert_no_post_since(second.index + 1, "once confirmed")
        .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_after_the_message_was_created_leaves_exactly_one_post() {
    the_answer_is_lost_after_creation_yet_one_post(
        FaultKind::StatusAfterHandling(500),
        "a 500 sent after the message was created",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_the_message_was_created_leaves_exactly_one_post() {
    the_answer_is_lost_after_creation_yet_one_post(
        FaultKind::DropAfterHandling,
        "the connection dropped after the message was created",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_later_than_the_timeout_leaves_exactly_one_post() {
    the_answer_is_lost_after_creation_yet_one_post(
        FaultKind::Delay(REQUEST_TIMEOUT * 3),
        "an answer later than the request timeout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_retry_after_then_posts_once_without_pausing() {
    let h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;
    let retry_after = Duration::from_millis(300);
    h.fake.rate_limit_next(
        "POST",
        &format!("/channels/{WEEKLY_CHANNEL_ID}/messages"),
        1,
        retry_after,
    );

    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let limited = h.wait_for_post(mark, 1, "at the slot").await;
    let post = h
        .wait_for_post(mark, 2, "after the 429's retry_after")
        .await;
    assert_eq!((limited.status, post.status), (429, 200));
    let waited = post.received_at - limited.received_at;
    assert!(
        waited >= retry_after,
        "the resend came {waited:?} after the 429, before its retry_after {retry_after:?}"
    );
    assert_eq!(limited.json()["nonce"], post.json()["nonce"]);
    check_post_body(&post, WEEK);
    h.wait_for_confirmed(WEEK, "after the rate-limited post")
        .await;
    assert!(
        h.settings().is_some_and(|s| s.failure.is_none()),
        "a 429 is not a channel failure"
    );
    assert_eq!(h.weekly_messages().len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 7. A 403 pauses the schedule

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_pauses_the_schedule_until_set_again() {
    let h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;
    // The bot lost its permission in #weekly: every post there is refused.
    h.fake.fail_next(
        "POST",
        &format!("/channels/{WEEKLY_CHANNEL_ID}/messages"),
        usize::MAX,
        403,
    );

    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let refused = h.wait_for_post(mark, 1, "at the slot").await;
    assert_eq!(refused.status, 403, "{}", refused.describe());
    wait_until("the schedule marked failing in the store", || {
        h.settings().is_some_and(|s| s.failure.is_some())
    })
    .await;
    let failure = h.settings().and_then(|s| s.failure).expect("failing");
    assert!(failure.reason.contains("403"), "{failure:?}");
    assert!(
        h.post(WEEK).is_none(),
        "the refused week is not logged as posted"
    );

    let shown = h.weekly("show", vec![]).await;
    assert!(
        shown.contains("Stopped") && shown.contains("Missing Permissions"),
        "/weekly show should show the failure: {shown}"
    );
    let refused_now = h.weekly("post-now", vec![]).await;
    assert!(
        refused_now.contains("stopped because of a channel problem"),
        "post-now while stopped: {refused_now}"
    );

    // A week and two weeks later: not a single request to that channel.
    let quiet_from = h.fake.mark();
    for weeks in [1, 2] {
        h.clock
            .set(at(SLOT) + chrono::Duration::weeks(weeks) + minutes(1));
        h.poster_pass().await;
    }
    h.fake
        .assert_no_request_since(
            quiet_from,
            "request to the refusing channel while paused",
            QUIET,
            |r| r.path.contains(&format!("/channels/{WEEKLY_CHANNEL_ID}")),
        )
        .await;

    // Fixed, and set again: the failure is cleared and the next slot posts.
    h.fake.clear_faults();
    let text = h.set_monday_9_london().await;
    assert!(text.contains("Done"), "{text}");
    let settings = h.settings().expect("set");
    assert!(settings.failure.is_none(), "{settings:?}");
    let shown = h.weekly("show", vec![]).await;
    assert!(!shown.contains("Paused"), "{shown}");
    let mark = h.fake.mark();
    let next_slot = at(SLOT) + chrono::Duration::weeks(3);
    h.clock.set(next_slot);
    let post = h
        .wait_for_post(mark, 1, "at the first slot after /weekly set")
        .await;
    assert_eq!(post.status, 200);
    check_post_body(
        &post,
        WeekKey {
            year: 2026,
            week: 51,
        }
        .into(),
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Post now

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_now_posts_once_and_takes_the_weeks_slot() {
    // Monday 07:00, two hours before the slot.
    let h = Harness::started("2026-11-23T07:00:00Z").await;
    h.set_monday_9_london().await;

    let mark = h.fake.mark();
    let text = h.weekly("post-now", vec![]).await;
    let posts = h.posts_since(mark);
    assert_eq!(posts.len(), 1, "post-now sends one post");
    check_post_body(&posts[0], WEEK);
    let messages = h.weekly_messages();
    assert_eq!(messages.len(), 1);
    let link = format!(
        "https://discord.com/channels/{GUILD_ID}/{WEEKLY_CHANNEL_ID}/{}",
        messages[0]["id"].as_str().expect("message id")
    );
    assert!(text.contains(&link), "the reply should link {link}: {text}");
    let record = h.post(WEEK).expect("logged");
    assert_eq!(record.source, PostSource::PostNow);
    assert!(record.is_confirmed());

    let again = h.weekly("post-now", vec![]).await;
    assert!(
        again.contains("already posted"),
        "a second post-now the same week is refused: {again}"
    );
    assert_eq!(h.posts_since(mark).len(), 1);

    // The week's scheduled slot posts nothing.
    h.clock.set(at(SLOT));
    h.poster_pass().await;
    h.clock.advance(minutes(5));
    h.assert_no_post_since(
        posts[0].index + 1,
        "at the slot of a week posted with post-now",
    )
    .await;
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 9. Off, and show with nothing set

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_stops_the_post_and_show_says_how_to_set_it_up() {
    let h = Harness::started(SUNDAY_NOON).await;
    let shown = h.weekly("show", vec![]).await;
    assert!(
        shown.contains("No scheduled posts are set up") && shown.contains("/weekly set"),
        "/weekly show with nothing set should say how to set it: {shown}"
    );

    h.set_monday_9_london().await;
    let text = h.weekly("off", vec![]).await;
    assert!(text.contains("off"), "{text}");
    assert!(!h.settings().expect("kept").enabled);
    let shown = h.weekly("show", vec![]).await;
    assert!(shown.contains("Off."), "/weekly show when off: {shown}");

    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    h.poster_pass().await;
    h.clock.advance(minutes(5));
    h.assert_no_post_since(mark, "at the slot after /weekly off")
        .await;
    assert!(h.post(WEEK).is_none());
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 10. A gateway reconnect

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_resume_does_not_cause_a_second_post() {
    let h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;

    // A reconnect before the slot, then the slot: one post.
    h.fake.close_gateway(4000);
    h.fake
        .wait_for_gateway("the bot to RESUME after close 4000", WAIT, |s| {
            s.resumed >= 1 && s.session_live
        })
        .await;
    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let post = h.wait_for_post(mark, 1, "at the slot after a RESUME").await;
    check_post_body(&post, WEEK);
    h.wait_for_confirmed(WEEK, "after the post").await;

    // A reconnect after the post: nothing more.
    h.fake.close_gateway(4000);
    h.fake
        .wait_for_gateway("the bot to RESUME a second time", WAIT, |s| {
            s.resumed >= 2 && s.session_live
        })
        .await;
    h.clock.advance(minutes(5));
    h.assert_no_post_since(post.index + 1, "after a RESUME in the posted week")
        .await;
    assert_eq!(h.posts_since(0).len(), 1);
    assert_eq!(h.weekly_messages().len(), 1);
    let stats = h.fake.gateway_stats();
    assert_eq!(stats.identifies, 1, "resumed, not re-identified: {stats:?}");
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// No server stalls another; shutdown is prompt; the store never blocks the runtime

/// A second server with its own #weekly channel.
const OTHER_GUILD_ID: u64 = 1_100_000_000_000_000_500;
const OTHER_WEEKLY_CHANNEL_ID: u64 = 1_100_000_000_000_000_511;

fn other_guild() -> TestGuild {
    TestGuild {
        id: OTHER_GUILD_ID,
        name: "Other Guild".into(),
        channels: vec![payloads::guild_text_channel(
            OTHER_WEEKLY_CHANNEL_ID,
            OTHER_GUILD_ID,
            "weekly",
        )],
        roles: vec![payloads::role(
            OTHER_GUILD_ID,
            "@everyone",
            MEMBER_PERMISSIONS,
            0,
        )],
        ..TestGuild::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_a_long_429_wait_delays_no_other_server_and_not_the_shutdown() {
    let fake = FakeDiscord::builder()
        .guilds(vec![TestGuild::default(), other_guild()])
        .start()
        .await;
    let mut h = Harness::with_fake(SUNDAY_NOON, fake);
    // B posts Mondays 09:00, C Mondays 09:01 (UTC), both set on Sunday.
    let db = h.store.blocking();
    let utc = |time| FeedSpec::plain(Schedule::parse("mon", time, "UTC").unwrap());
    db.set_feed(FEED, &utc("09:00"), at(SUNDAY_NOON)).unwrap();
    db.set_feed(
        FeedId::new(OTHER_GUILD_ID, OTHER_WEEKLY_CHANNEL_ID),
        &utc("09:01"),
        at(SUNDAY_NOON),
    )
    .unwrap();
    let b_posts = format!("/channels/{WEEKLY_CHANNEL_ID}/messages");
    let c_posts = format!("/channels/{OTHER_WEEKLY_CHANNEL_ID}/messages");
    h.fake
        .rate_limit_next("POST", &b_posts, 1, Duration::from_secs(60));
    h.start().await;

    // B's post starts 40 s late and Discord tells it to wait 60 s.
    let mark = h.fake.mark();
    h.clock.set(at("2026-11-23T09:00:40Z"));
    h.fake
        .wait_for_request_since(mark, "B's post, answered 429", PROMPT, |r| {
            r.is("POST", &b_posts) && r.status == 429
        })
        .await;
    // C's slot, 20 s later, posts at once while B waits.
    h.clock.set(at("2026-11-23T09:01:00Z"));
    let c = h
        .fake
        .wait_for_request_since(mark, "C's post, within moments of its slot", PROMPT, |r| {
            r.is("POST", &c_posts)
        })
        .await;
    assert_eq!(c.status, 200, "{}", c.describe());

    // Shutdown does not wait out B's 429.
    let stopping = Instant::now();
    h.stop().await;
    h.store = Store::open(&h.db).unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    let b = h
        .store
        .blocking()
        .post(FEED, WEEK)
        .unwrap()
        .expect("B's claim is kept");
    assert_eq!((b.attempts, b.message_id), (1, None), "{b:?}");

    // After a restart, B's post goes out once and C's is not repeated.
    let mark = h.fake.mark();
    h.start().await;
    h.wait_for_post(mark, 1, "of B after the restart").await;
    h.wait_for_confirmed(WEEK, "after the restart").await;
    h.poster_pass().await;
    let posts_in = |channel: u64| {
        h.fake
            .channel_messages(channel)
            .iter()
            .filter(|m| m["embeds"][0]["title"] == WEEKLY_TITLE)
            .count()
    };
    assert_eq!(
        (
            posts_in(WEEKLY_CHANNEL_ID),
            posts_in(OTHER_WEEKLY_CHANNEL_ID)
        ),
        (1, 1),
        "exactly one post per server"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_locked_database_never_makes_the_bot_miss_discords_three_seconds() {
    let h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;
    // Another connection (a backup, a second process, an operator's sqlite3 shell) holds the
    // write lock for 5 s.
    let locker = rusqlite::Connection::open(&h.db).unwrap();
    locker
        .execute_batch("BEGIN IMMEDIATE; UPDATE feed SET updated_at = updated_at;")
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        locker.execute_batch("COMMIT;").unwrap();
    });
    // A write waits for the lock (on the blocking pool), a read waits behind it on the store's
    // connection, and a question needs no store at all: each is acknowledged in time.
    let off = weekly("off", vec![]).build();
    let show = weekly("show", vec![]).build();
    let advice = slash_command("advice", vec![opt_string("question", "How do I delegate?")])
        .in_guild_member(payloads::member(payloads::alice(), &[], None))
        .build();
    for interaction in [&off, &show, &advice] {
        h.fake
            .dispatch("INTERACTION_CREATE", interaction.clone())
            .await;
    }
    for (interaction, what) in [
        (&off, "/weekly off"),
        (&show, "/weekly show"),
        (&advice, "/advice"),
    ] {
        let callback = h.fake.wait_for_callback(interaction, WAIT).await;
        assert_eq!(callback.status, 204, "{what}: {}", callback.describe());
        let latency = h
            .fake
            .interaction_timing(interaction)
            .and_then(|t| t.latency())
            .expect("answered");
        assert!(
            latency < Duration::from_secs(3),
            "{what} answered after {latency:?}"
        );
    }
    release.join().unwrap();
    // Once the lock is gone, the deferred answers are completed (a follow-up, or an edit of the
    // deferred original).
    let answer = |i: &Value| {
        let followed = h.fake.followups(i).last().cloned();
        followed
            .or_else(|| h.fake.original_response(i))
            .and_then(|m| m["content"].as_str().map(str::to_string))
            .filter(|c| !c.is_empty())
    };
    wait_until(
        "/weekly off and /weekly show completed after the lock",
        || answer(&off).is_some() && answer(&show).is_some(),
    )
    .await;
    let off_text = answer(&off).unwrap();
    assert!(off_text.contains("are off"), "{off_text}");
    assert!(
        !h.settings().unwrap().enabled,
        "the write went through once the lock was free"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 12. Feeds: several per server, cadences and topics, threads, forums, pings, skip, pause, resume,
// preview, and the migration of a schedule from before feeds.

/// The feed of `channel` in the test server.
fn feed(channel: u64) -> FeedId {
    FeedId::new(GUILD_ID, channel)
}

/// The footers of the bot's posts in `channel`, as the fake stores them, oldest first.
fn footers_in(h: &Harness, channel: u64) -> Vec<String> {
    let mut messages: Vec<Value> = h
        .fake
        .channel_messages(channel)
        .into_iter()
        .filter(|m| payloads::id_of(&m["author"]) == BOT_USER_ID)
        .collect();
    messages.sort_by_key(payloads::id_of);
    messages
        .iter()
        .filter_map(|m| m["embeds"][0]["footer"]["text"].as_str().map(String::from))
        .collect()
}

/// A topic of the served collection with at least `min` insights, and their ids.
fn topic_with(min: usize) -> (String, Vec<String>) {
    let library = library();
    let (topic, _) = library
        .topics()
        .filter(|(_, count)| *count >= min)
        .max_by_key(|(_, count)| *count)
        .unwrap_or_else(|| panic!("no topic with {min} insights"));
    let ids = library
        .insights()
        .iter()
        .filter(|i| i.topics.iter().any(|t| t == topic))
        .map(|i| i.id.clone())
        .collect();
    (topic.to_string(), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_and_a_daily_feed_of_one_server_post_once_in_each_of_their_periods() {
    let mut h = Harness::started(SUNDAY_NOON).await;
    let (topic, topic_ids) = topic_with(3);
    h.set_monday_9_london().await;
    let text = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", GENERAL_CHANNEL_ID),
                h.choice("repeat", "daily"),
                opt_string("time", "12:30"),
                opt_string("timezone", "UTC"),
                opt_string("topic", &topic),
            ],
        )
        .await;
    assert!(
        text.contains("every day at 12:30") && text.contains(&format!("topic `{topic}`")),
        "{text}"
    );
    let list = h.list().await;
    for part in [
        format!("<#{WEEKLY_CHANNEL_ID}>"),
        format!("<#{GENERAL_CHANNEL_ID}>"),
        "every Monday at 09:00".to_string(),
        "every day at 12:30".to_string(),
        format!("<t:{}:F>", at(SLOT).timestamp()),
        format!("<t:{}:F>", at("2026-11-22T12:30:00Z").timestamp()),
    ] {
        assert!(list.contains(&part), "/weekly list lacks {part:?}: {list}");
    }

    // Sunday 12:30 the daily feed; Monday 09:00 the weekly one, 12:30 the daily one; restarts;
    // Tuesday and Wednesday 12:30.
    for (instant, restart) in [
        ("2026-11-22T12:30:00Z", false),
        (SLOT, false),
        ("2026-11-23T12:30:00Z", true),
        ("2026-11-24T12:30:00Z", false),
        ("2026-11-25T12:30:00Z", true),
    ] {
        h.clock.set(at(instant));
        if restart {
            h.restart().await;
        }
        h.poster_pass().await;
        h.poster_pass().await;
    }
    h.clock.set(at("2026-11-25T18:00:00Z"));
    h.poster_pass().await;
    assert_eq!(footers_in(&h, WEEKLY_CHANNEL_ID), [week_label(WEEK)]);
    assert_eq!(
        footers_in(&h, GENERAL_CHANNEL_ID),
        [
            "Sunday 22 November 2026",
            "Monday 23 November 2026",
            "Tuesday 24 November 2026",
            "Wednesday 25 November 2026"
        ],
        "one daily post a day, none twice across the restarts"
    );
    let daily: Vec<Value> = h.fake.channel_messages(GENERAL_CHANNEL_ID);
    for message in &daily {
        let embed = &message["embeds"][0];
        assert_eq!(embed["title"], "Leadership insight of the day");
        let insight = insight_with_text(embed["description"].as_str().unwrap_or_default());
        assert!(
            topic_ids.contains(&insight.id),
            "{} is not on {topic}",
            insight.id
        );
    }
    // With two feeds, a command without a channel asks which.
    let which = h.weekly("skip", vec![]).await;
    assert!(
        which.contains("2 feeds")
            && which.contains(&format!("<#{WEEKLY_CHANNEL_ID}>"))
            && which.contains(&format!("<#{GENERAL_CHANNEL_ID}>")),
        "{which}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_started_under_the_post_named_after_its_insight_and_never_twice() {
    let h = Harness::started(SUNDAY_NOON).await;
    let text = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                h.day("Monday"),
                opt_string("time", "09:00"),
                opt_string("timezone", "Europe/London"),
                opt_bool("thread", true),
            ],
        )
        .await;
    assert!(text.contains("with a discussion thread"), "{text}");
    // Discord creates the thread but the answer is lost: the bot learns it on the retry.
    h.fake.add_fault(
        "POST",
        &format!("/channels/{WEEKLY_CHANNEL_ID}/messages/"),
        1,
        FaultKind::DropAfterHandling,
    );
    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let post = h.wait_for_post(mark, 1, "at the slot").await;
    let insight = check_post_body(&post, WEEK);
    let record = h.wait_for_confirmed(WEEK, "after the post").await;
    let message_id = record.message_id.expect("confirmed");
    let thread_route = format!("/channels/{WEEKLY_CHANNEL_ID}/messages/{message_id}/threads");
    h.fake
        .wait_for_request_since(mark, "the thread's first try", WAIT, |r| {
            r.is("POST", &thread_route)
        })
        .await;
    h.poster_pass().await;
    let record = h.post(WEEK).expect("kept");
    assert_eq!(
        record.thread_id, None,
        "the lost answer is not a thread yet"
    );
    assert!(record.thread_error.is_some(), "{record:?}");
    // The retry, a minute later (retry_later in these tests), meets "already created".
    h.clock.advance(minutes(2));
    h.poster_pass().await;
    let record = h.post(WEEK).expect("kept");
    assert_eq!(record.thread_id, Some(message_id), "{record:?}");
    let thread = h
        .fake
        .thread_of_message(message_id)
        .expect("a thread under the post");
    assert_eq!(
        thread["name"],
        insight_bot::weekly::feed::thread_name(&insight.title)
    );
    assert_eq!(thread["thread_metadata"]["auto_archive_duration"], 10080);
    assert_eq!(h.fake.threads_in(WEEKLY_CHANNEL_ID).len(), 1);
    assert_eq!(h.weekly_messages().len(), 1, "one post");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ping_reaches_its_role_only_and_a_role_that_cannot_be_pinged_is_refused() {
    let h = Harness::started(SUNDAY_NOON).await;
    let set_with_ping = |role: u64| {
        vec![
            opt_channel("channel", WEEKLY_CHANNEL_ID),
            h.day("Monday"),
            opt_string("time", "09:00"),
            opt_string("timezone", "Europe/London"),
            payloads::opt_role("ping", role),
        ]
    };
    let refused = h.weekly("set", set_with_ping(EVERYONE_ROLE_ID)).await;
    assert!(refused.contains("won't ping @everyone"), "{refused}");
    let refused = h.weekly("set", set_with_ping(QUIET_ROLE_ID)).await;
    assert!(
        refused.contains("not mentionable") && refused.contains("Mention Everyone"),
        "{refused}"
    );
    assert!(h.settings().is_none(), "nothing stored for a refused ping");
    let text = h.weekly("set", set_with_ping(PING_ROLE_ID)).await;
    assert!(
        text.contains(&format!("pinging <@&{PING_ROLE_ID}>")),
        "{text}"
    );
    // The standard guild gives the bot no role to hand out roles with: `set` says so.
    assert!(text.contains("once I have **Manage Roles**"), "{text}");

    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let post = h.wait_for_post(mark, 1, "at the slot").await;
    check_post_body(&post, WEEK);
    let body = post.json();
    assert_eq!(body["content"], format!("<@&{PING_ROLE_ID}>"));
    assert_eq!(
        body["allowed_mentions"],
        json!({"parse": [], "users": [], "roles": [PING_ROLE_ID.to_string()], "replied_user": false}),
        "the role and nothing else"
    );
    let record = h.wait_for_confirmed(WEEK, "after the post").await;
    let message = h
        .fake
        .message(record.message_id.unwrap())
        .expect("the post");
    assert_eq!(message["mention_roles"], json!([PING_ROLE_ID.to_string()]));
    assert_eq!(message["mention_everyone"], false);
    assert_eq!(message["mentions"], json!([]));
    // Its button cannot hand out the role here, and says who can fix that.
    assert_eq!(
        body["components"][0]["components"][0]["custom_id"],
        format!("fp:{PING_ROLE_ID}")
    );
    let click = payloads::button_click(&format!("fp:{PING_ROLE_ID}"), message.clone())
        .in_guild(
            GUILD_ID,
            WEEKLY_CHANNEL_ID,
            payloads::member(payloads::alice(), &[], None),
        )
        .build();
    let answer = h.reply(&click).await;
    assert!(answer.contains("Manage Roles"), "{answer}");
    assert!(h.fake.member_roles(GUILD_ID, payloads::USER_ID).is_empty());
    // `set` again with only the channel (say, after fixing a permission) keeps the ping and the
    // schedule; `no-ping:true` removes the ping.
    let again = h
        .weekly("set", vec![opt_channel("channel", WEEKLY_CHANNEL_ID)])
        .await;
    assert!(
        again.contains(&format!("pinging <@&{PING_ROLE_ID}>"))
            && again.contains("every Monday at 09:00")
            && again.contains("Europe/London"),
        "{again}"
    );
    let quiet = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                opt_bool("no-ping", true),
            ],
        )
        .await;
    assert!(!quiet.contains("pinging"), "{quiet}");
    assert_eq!(h.settings().unwrap().ping_role, None);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_pause_until_and_resume_hold_across_restarts_and_preview_tells_the_truth() {
    let mut h = Harness::started(SUNDAY_NOON).await;
    h.set_monday_9_london().await;
    let (preview, previewed) = h.preview().await;
    assert!(
        preview.contains(&format!("<t:{}:F>", at(SLOT).timestamp())),
        "{preview}"
    );
    assert!(previewed.is_some(), "{preview}");
    // Skip W48: its insight waits for the next post.
    let skipped = h.weekly("skip", vec![]).await;
    assert!(skipped.contains("Week 48 · 2026"), "{skipped}");
    let (preview, after_skip) = h.preview().await;
    let w49 = at("2026-11-30T09:00:00Z");
    assert!(
        preview.contains(&format!("<t:{}:F>", w49.timestamp())),
        "{preview}"
    );
    assert_eq!(after_skip, previewed, "the rotation did not move");
    h.restart().await;
    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    h.poster_pass().await;
    h.assert_no_post_since(mark, "in the skipped week").await;

    // Pause until Tuesday 8 December: W49 (30 Nov) and W50 (7 Dec) are not posted, W51 is.
    let past = h
        .weekly("pause", vec![opt_string("until", "2026-11-20")])
        .await;
    assert!(
        past.contains("not in the future") && past.contains("until:"),
        "{past}"
    );
    let paused = h
        .weekly("pause", vec![opt_string("until", "2026-12-08")])
        .await;
    let w51 = at("2026-12-14T09:00:00Z");
    assert!(
        paused.contains("Tuesday 8 December 2026")
            && paused.contains(&format!("<t:{}:F>", w51.timestamp())),
        "{paused}"
    );
    for instant in ["2026-11-30T09:00:00Z", "2026-12-07T09:00:00Z"] {
        h.restart().await;
        h.clock.set(at(instant));
        h.poster_pass().await;
        h.assert_no_post_since(mark, "while paused").await;
    }
    let list = h.list().await;
    assert!(
        list.contains("Paused until Tuesday 8 December 2026"),
        "{list}"
    );
    h.clock.set(w51);
    let post = h.wait_for_post(mark, 1, "when the pause is over").await;
    let insight = check_post_body(
        &post,
        WeekKey {
            year: 2026,
            week: 51,
        }
        .into(),
    );
    assert_eq!(
        Some(insight.id),
        previewed,
        "the previewed insight is the one posted"
    );

    // Pause with no date, a restart over W52's slot, resume after it: nothing late, W53 posts.
    let paused = h.weekly("pause", vec![]).await;
    assert!(paused.contains("/weekly resume"), "{paused}");
    h.restart().await;
    let mark = h.fake.mark();
    h.clock.set(at("2026-12-21T10:00:00Z"));
    h.poster_pass().await;
    let resumed = h.weekly("resume", vec![]).await;
    let w53 = at("2026-12-28T09:00:00Z");
    assert!(
        resumed.contains(&format!("<t:{}:F>", w53.timestamp())),
        "{resumed}"
    );
    h.poster_pass().await;
    h.assert_no_post_since(mark, "for the week missed while paused")
        .await;
    h.clock.set(w53);
    let post = h.wait_for_post(mark, 1, "after resume").await;
    check_post_body(
        &post,
        WeekKey {
            year: 2026,
            week: 53,
        }
        .into(),
    );
    assert_eq!(h.weekly_messages().len(), 2);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forum_feed_makes_one_forum_post_per_insight_titled_by_it() {
    let mut h = Harness::started(SUNDAY_NOON).await;
    let text = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", FORUM_CHANNEL_ID),
                h.day("Monday"),
                opt_string("time", "09:00"),
                opt_string("timezone", "Europe/London"),
            ],
        )
        .await;
    assert!(text.contains("forum post"), "{text}");
    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let route = format!("/channels/{FORUM_CHANNEL_ID}/threads");
    let post = h
        .fake
        .wait_for_request_since(mark, "the forum post", PROMPT, |r| r.is("POST", &route))
        .await;
    assert_eq!(post.status, 201, "{}", post.describe());
    let body = post.json();
    let embed = &body["message"]["embeds"][0];
    let insight = insight_with_text(embed["description"].as_str().unwrap_or_default());
    assert_eq!(
        body["name"],
        insight_bot::weekly::feed::thread_name(&insight.title)
    );
    assert_eq!(body["message"]["allowed_mentions"]["parse"], json!([]));
    let record = h
        .store
        .blocking()
        .post(feed(FORUM_CHANNEL_ID), WEEK)
        .unwrap()
        .expect("claimed");
    h.restart().await;
    h.poster_pass().await;
    let threads = h.fake.threads_in(FORUM_CHANNEL_ID);
    assert_eq!(threads.len(), 1, "{threads:#?}");
    let record = h
        .store
        .blocking()
        .post(feed(FORUM_CHANNEL_ID), WEEK)
        .unwrap()
        .unwrap_or(record);
    assert_eq!(
        record.message_id.map(|id| id.to_string()),
        threads[0]["id"].as_str().map(String::from),
        "the post is the thread"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_feed_options_are_refused_with_what_to_type_and_nothing_is_stored() {
    let h = Harness::started(SUNDAY_NOON).await;
    let daily_with_day = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                h.choice("repeat", "daily"),
                h.day("Monday"),
            ],
        )
        .await;
    assert!(
        daily_with_day.contains("`day` is only for weekly")
            && daily_with_day.contains("/weekly set channel:"),
        "{daily_with_day}"
    );
    let unknown_topic = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                opt_string("topic", "astrology"),
            ],
        )
        .await;
    assert!(
        unknown_topic.contains("no topic or pack `astrology`") && unknown_topic.contains("/topics"),
        "{unknown_topic}"
    );
    assert!(h.settings().is_none());
    h.set_monday_9_london().await;
    let bad_date = h
        .weekly("pause", vec![opt_string("until", "next week")])
        .await;
    assert!(bad_date.contains("YYYY-MM-DD"), "{bad_date}");
    let far = h
        .weekly("pause", vec![opt_string("until", "2028-01-01")])
        .await;
    assert!(far.contains("at most a year"), "{far}");
    assert_eq!(h.settings().unwrap().pause, None, "nothing paused");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eleventh_feed_is_refused_and_a_deleted_channel_stops_its_feed_with_the_reason() {
    let channels: Vec<u64> = (0..11).map(|n| 1_100_000_000_000_000_600 + n).collect();
    let mut guild = TestGuild::default();
    for (n, &channel) in channels.iter().enumerate() {
        guild.channels.push(payloads::guild_text_channel(
            channel,
            GUILD_ID,
            &format!("feed-{n}"),
        ));
    }
    let fake = FakeDiscord::builder().guilds(vec![guild]).start().await;
    let mut h = Harness::with_fake(SUNDAY_NOON, fake);
    h.start().await;
    // Ten feeds, stored directly (ten commands in a row would meet the per-member cooldown).
    for &channel in &channels[..10] {
        h.store
            .blocking()
            .set_feed(
                feed(channel),
                &FeedSpec::plain(Schedule::parse("mon", "09:00", "UTC").unwrap()),
                at(SUNDAY_NOON),
            )
            .unwrap();
    }
    let refused = h
        .weekly("set", vec![opt_channel("channel", channels[10])])
        .await;
    assert!(
        refused.contains("10 feeds on") && refused.contains("/weekly off channel:"),
        "{refused}"
    );
    assert_eq!(h.store.blocking().feed(feed(channels[10])).unwrap(), None);
    // One of the ten is deleted: its post meets 404 and its feed stops, the others post.
    h.fake.delete_channel(channels[0]);
    h.clock.set(at("2026-11-23T09:00:00Z"));
    h.poster_pass().await;
    let stopped = h.store.blocking().feed(feed(channels[0])).unwrap().unwrap();
    assert!(stopped.failure.is_some(), "{stopped:?}");
    for &channel in &channels[1..10] {
        assert_eq!(footers_in(&h, channel).len(), 1, "<#{channel}>");
    }
    let list = h.list().await;
    assert!(
        list.contains("Stopped since") && list.contains("404"),
        "/weekly list shows why: {list}"
    );
    // With one feed off, the eleventh may start.
    h.weekly("off", vec![opt_channel("channel", channels[0])])
        .await;
    let text = h
        .weekly("set", vec![opt_channel("channel", channels[10])])
        .await;
    assert!(text.starts_with("Done"), "{text}");
    h.restart().await;
    h.finish().await;
}

/// A database as insight-bot left it before feeds (schema version 6): Monday 09:00 London in
/// #weekly, set a month ago, its rotation two insights into a cycle, and the post of week 47.
fn a_version_6_database(path: &std::path::Path, shown: &[&str], order: &[&str]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for (version, sql) in [
        (1, include_str!("../migrations/0001_init.sql")),
        (2, include_str!("../migrations/0002_server_insights.sql")),
        (3, include_str!("../migrations/0003_usage.sql")),
        (4, include_str!("../migrations/0004_gap_vectors.sql")),
        (5, include_str!("../migrations/0005_server_packs.sql")),
        (6, include_str!("../migrations/0006_weak_answers.sql")),
    ] {
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))
        .unwrap_or_else(|e| panic!("migration {version}: {e}"));
    }
    let state = json!({"cycle": 1, "order": order, "shown": shown.len(), "last": shown.last()});
    conn.execute(
        "INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, active_since, \
             updated_at) \
         VALUES (?1, ?2, 'mon', '09:00', 'Europe/London', 1, '2026-10-20T10:00:00.000Z', \
             '2026-10-20T10:00:00.000Z')",
        rusqlite::params![GUILD_ID as i64, WEEKLY_CHANNEL_ID as i64],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO rotation (guild_id, state, updated_at) VALUES (?1, ?2, '2026-11-16T09:00:00.000Z')",
        rusqlite::params![GUILD_ID as i64, state.to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, source, \
             claimed_at, attempts, updated_at, message_id, posted_at) \
         VALUES (?1, 2026, 47, ?2, ?3, 'iw202647old', 'schedule', '2026-11-16T09:00:00.000Z', 1, \
             '2026-11-16T09:00:01.000Z', 777, '2026-11-16T09:00:01.000Z')",
        rusqlite::params![GUILD_ID as i64, WEEKLY_CHANNEL_ID as i64, shown.last().unwrap()],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_from_before_feeds_becomes_its_channels_feed_and_keeps_its_rotation() {
    let library = library();
    let ids: Vec<&str> = library.insights().iter().map(|i| i.id.as_str()).collect();
    // The cycle's order is the collection reversed; two were shown, the third is next.
    let order: Vec<&str> = ids.iter().rev().copied().collect();
    let mut h = Harness::with_database(SUNDAY_NOON, FakeDiscord::start().await, |db| {
        a_version_6_database(db, &order[..2], &order)
    });
    h.start().await;
    let settings = h.settings().expect("the schedule is the feed of #weekly");
    assert_eq!(settings.schedule, monday_9_london());
    let list = h.list().await;
    assert!(
        list.contains("Week 47 · 2026"),
        "the post log is kept: {list}"
    );
    let mark = h.fake.mark();
    h.clock.set(at(SLOT));
    let post = h.wait_for_post(mark, 1, "after the migration").await;
    let insight = check_post_body(&post, WEEK);
    assert_eq!(insight.id, order[2], "the rotation continues where it was");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ping_button_gives_and_takes_the_feeds_role_and_no_other() {
    // The bot has a role of its own, above weekly-readers, with Manage Roles.
    const BOT_ROLE_ID: u64 = 1_100_000_000_000_000_105;
    let guild = TestGuild::default().with_bot_role(BOT_ROLE_ID, payloads::MANAGE_ROLES, 5);
    let fake = FakeDiscord::builder().guilds(vec![guild]).start().await;
    let mut h = Harness::with_fake(SUNDAY_NOON, fake);
    h.start().await;
    let text = h
        .weekly(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                payloads::opt_role("ping", PING_ROLE_ID),
            ],
        )
        .await;
    assert!(
        text.contains("with the 🔔 button under each post"),
        "{text}"
    );
    let mark = h.fake.mark();
    h.clock.set(at("2026-11-23T09:00:00Z"));
    h.wait_for_post(mark, 1, "at the slot").await;
    let record = h.wait_for_confirmed(WEEK, "after the post").await;
    let post = h
        .fake
        .message(record.message_id.unwrap())
        .expect("the post");
    let click = |roles: &[u64], custom_id: &str| {
        payloads::button_click(custom_id, post.clone())
            .in_guild(
                GUILD_ID,
                WEEKLY_CHANNEL_ID,
                payloads::member(payloads::alice(), roles, None),
            )
            .build()
    };
    let ping = format!("fp:{PING_ROLE_ID}");
    let joined = h.reply(&click(&[], &ping)).await;
    assert!(joined.contains("will ping you"), "{joined}");
    assert_eq!(
        h.fake.member_roles(GUILD_ID, payloads::USER_ID),
        [PING_ROLE_ID]
    );
    let left = h.reply(&click(&[PING_ROLE_ID], &ping)).await;
    assert!(left.contains("won't ping you"), "{left}");
    assert!(h.fake.member_roles(GUILD_ID, payloads::USER_ID).is_empty());
    // A button naming any other role (no feed pings it) gives nothing.
    let forged = h.reply(&click(&[], &format!("fp:{ADMIN_ROLE_ID}"))).await;
    assert!(forged.contains("nothing to sign up for"), "{forged}");
    assert!(h.fake.member_roles(GUILD_ID, payloads::USER_ID).is_empty());
    h.finish().await;
}
