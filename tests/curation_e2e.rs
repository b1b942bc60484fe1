//! End to end: a server's own insights through the fake Discord — the `/insights` forms
//! (MODAL_SUBMIT), import from an attachment the fake serves, export, buttons clicked by
//! non-curators, suggestions and their review, two servers kept apart, a weekly post that picks
//! a server's own insight, and a restart. Every body the bot sends is checked against Discord's
//! OpenAPI spec when the bot stops.

mod support;

use std::time::Duration;

use insight_bot::insights::{parse_import, Rules};
use serde_json::Value;
use support::answers::*;
use support::bot::*;
use support::payloads::*;
use support::{FakeDiscord, WAIT};

const OTHER_GUILD: u64 = GUILD_ID + 50;
const CURATOR_ROLE: u64 = 1_100_000_000_000_000_150;

const OFFSITE_TITLE: &str = "Plan offsites around decisions, not activities";
const OFFSITE_TEXT: &str = "A remote team's offsite is expensive time together. Decide beforehand \
    which two or three decisions need everyone in one room, put them on the first morning, and \
    leave the games for after. People remember an offsite for what it settled.";
const OFFSITE_ID: &str = "plan-offsites-around-decisions-not-activities";
const OFFSITE_QUESTION: &str =
    "we're planning our first offsite for a fully remote team, how do we make it worth it?";

fn insights_cmd(sub: &str, options: Vec<Value>) -> InteractionBuilder {
    slash_command("insights", vec![opt_subcommand(sub, options)])
}

fn offsite_form() -> InteractionBuilder {
    modal_submit(
        "ins:add",
        &[
            ("title", OFFSITE_TITLE),
            ("text", OFFSITE_TEXT),
            ("topics", "Meetings, remote teams"),
            (
                "asks",
                "how do I plan an offsite?\n\nour offsites feel like a waste",
            ),
        ],
    )
}

/// The title of the best insight `/advice` gives for `question` where `place` says.
async fn advice_title(fake: &FakeDiscord, question: &str, place: InteractionBuilder) -> String {
    let (_, kind, message) = send(fake, &place).await;
    assert_eq!(kind, 4, "{message:#}");
    assert_no_pings(&message);
    let _ = question;
    message["embeds"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn advice_in(guild: u64, question: &str) -> InteractionBuilder {
    slash_command("advice", vec![opt_string("question", question)]).in_guild(
        guild,
        GENERAL_CHANNEL_ID,
        fresh_member(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curator_adds_an_insight_with_the_form_and_the_next_advice_finds_it_in_that_server_only()
{
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;

    // The command opens the form.
    let (_, kind, form) = send(&fake, &insights_cmd("add", vec![]).by_admin()).await;
    assert_eq!(kind, 9, "{form:#}");
    assert_eq!(form["custom_id"], "ins:add");
    let inputs: Vec<&str> = form["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["components"][0]["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["title", "text", "topics", "asks"]);

    assert_ne!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(GUILD_ID, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE
    );
    let (_, kind, saved) = send(&fake, &offsite_form().by_admin()).await;
    assert_eq!(kind, 4, "{saved:#}");
    assert!(is_ephemeral(&saved), "{saved:#}");
    assert!(content(&saved).contains(OFFSITE_ID), "{saved:#}");
    assert_eq!(saved["embeds"][0]["title"], OFFSITE_TITLE);

    // Live: the next question in this server finds it.
    assert_eq!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(GUILD_ID, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE
    );
    // Another server and DMs do not.
    assert_ne!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(OTHER_GUILD, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE
    );
    let dm =
        slash_command("advice", vec![opt_string("question", OFFSITE_QUESTION)]).in_dm(fresh_user());
    assert_ne!(
        advice_title(&fake, OFFSITE_QUESTION, dm).await,
        OFFSITE_TITLE
    );

    // `show` and `list` say where it comes from.
    let (_, _, show) = send(
        &fake,
        &insights_cmd("show", vec![opt_string("id", OFFSITE_ID)]),
    )
    .await;
    assert!(content(&show).contains("this server's own"), "{show:#}");
    let (_, _, list) = send(&fake, &insights_cmd("list", vec![])).await;
    let listed = list["embeds"][0]["description"].as_str().unwrap();
    assert!(
        listed.contains(&format!("`{OFFSITE_ID}`")) && listed.contains("this server"),
        "{listed}"
    );
    let (_, _, other_list) = send(
        &fake,
        &insights_cmd("list", vec![]).in_guild(OTHER_GUILD, GENERAL_CHANNEL_ID, fresh_member()),
    )
    .await;
    assert!(!other_list.to_string().contains(OFFSITE_ID));
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_who_are_not_curators_are_refused_by_commands_forms_and_buttons() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let (_, _, saved) = send(&fake, &offsite_form().by_admin()).await;
    assert!(content(&saved).contains(OFFSITE_ID));

    // The command: no form, an explanation.
    let (_, kind, refused) = send(&fake, &insights_cmd("add", vec![])).await;
    assert_eq!(kind, 4);
    assert!(is_ephemeral(&refused));
    assert!(content(&refused).contains("Only curators"), "{refused:#}");
    // A form submitted anyway (anyone can send an interaction): refused, nothing saved.
    let (_, _, refused) = send(
        &fake,
        &modal_submit("ins:add", &[("title", "Sneaky"), ("text", "Sneaky text.")]),
    )
    .await;
    assert!(content(&refused).contains("Only curators"), "{refused:#}");

    // A button on a curator's message, clicked by a member: refused at click time.
    let (asked, _, confirm) = send(
        &fake,
        &insights_cmd("remove", vec![opt_string("id", OFFSITE_ID)]).by_admin(),
    )
    .await;
    let remove = button_starting(&confirm, "ins:rm:");
    let (_, kind, refused) = send(&fake, &button_click(&remove, shown(&fake, &asked))).await;
    assert_eq!(
        kind, 4,
        "a refusal is a new ephemeral message, the confirmation stays"
    );
    assert!(content(&refused).contains("Only curators"), "{refused:#}");
    assert_eq!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(GUILD_ID, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE,
        "still there"
    );

    // A curator role makes a member a curator; only Manage Server may set it.
    let (_, _, refused) = send(
        &fake,
        &insights_cmd("curators", vec![opt_role("role", CURATOR_ROLE)]),
    )
    .await;
    assert!(content(&refused).contains("Manage Server"), "{refused:#}");
    let (_, _, set) = send(
        &fake,
        &insights_cmd("curators", vec![opt_role("role", CURATOR_ROLE)]).by_admin(),
    )
    .await;
    assert!(content(&set).contains(&CURATOR_ROLE.to_string()), "{set:#}");
    let curator = member(fresh_user(), &[CURATOR_ROLE], None);
    let (_, kind, _) = send(
        &fake,
        &insights_cmd("add", vec![]).in_guild_member(curator.clone()),
    )
    .await;
    assert_eq!(kind, 9, "a member with the curator role gets the form");
    // ...and their click counts.
    let (_, kind, removed) = send(
        &fake,
        &button_click(&remove, shown(&fake, &asked)).in_guild_member(curator),
    )
    .await;
    assert_eq!(kind, 7, "{removed:#}");
    assert!(content(&removed).contains("Removed"), "{removed:#}");
    assert_ne!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(GUILD_ID, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE
    );
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_near_duplicate_is_shown_before_saving_and_a_refused_form_can_be_fixed() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let copy = modal_submit(
        "ins:add",
        &[
            ("title", "Learning to trust and delegate"),
            (
                "text",
                "Moving from hands-on contributor to leader is one of the hardest career shifts. \
                 You have to deliberately step back from doing the work by learning to trust and \
                 delegate: hire talented people, empower them, and get out of their way.",
            ),
        ],
    )
    .by_admin();
    let (asked, kind, warning) = send(&fake, &copy).await;
    assert_eq!(kind, 4);
    assert!(
        content(&warning).contains("trust-and-delegate"),
        "{warning:#}"
    );
    assert_eq!(warning["embeds"][0]["title"], "Learn to trust and delegate");
    let save = button_starting(&warning, "ins:save:");
    button_starting(&warning, "ins:cancel:");
    // Nothing saved yet.
    let (_, _, list) = send(&fake, &insights_cmd("list", vec![])).await;
    assert!(list["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .contains("(0 own"));
    let (_, kind, saved) = send(&fake, &button_click(&save, shown(&fake, &asked)).by_admin()).await;
    assert_eq!(kind, 7, "{saved:#}");
    assert!(
        content(&saved).contains("Saved `learning-to-trust-and-delegate`"),
        "{saved:#}"
    );
    // The token is spent: a second click says so and saves nothing twice.
    let (_, _, again) = send(&fake, &button_click(&save, shown(&fake, &asked)).by_admin()).await;
    assert!(content(&again).contains("no longer waiting"), "{again:#}");

    // A form the rules refuse: nothing saved, and "Fix it" reopens it with what was typed.
    let bad = modal_submit(
        "ins:add",
        &[
            ("title", "Topics are tags"),
            ("text", "Text."),
            ("topics", "a/b"),
        ],
    )
    .by_admin();
    let (asked, kind, refused) = send(&fake, &bad).await;
    assert_eq!(kind, 4);
    assert!(
        content(&refused).contains("Nothing was saved"),
        "{refused:#}"
    );
    assert!(
        content(&refused).contains("not a lowercase tag"),
        "{refused:#}"
    );
    let fix = button_starting(&refused, "ins:fix:");
    let (_, kind, form) = send(&fake, &button_click(&fix, shown(&fake, &asked)).by_admin()).await;
    assert_eq!(kind, 9, "{form:#}");
    assert_eq!(form["custom_id"], "ins:add");
    assert_eq!(
        form["components"][0]["components"][0]["value"],
        "Topics are tags"
    );
    assert_eq!(form["components"][2]["components"][0]["value"], "a/b");
    stop_bot(&fake, bot).await;
}

fn import_file(fake: &FakeDiscord, name: &str, body: &str) -> InteractionBuilder {
    let attachment = fake.host_attachment(name, "text/plain", body.as_bytes().to_vec());
    insights_cmd("import", vec![opt_attachment("file", id_of(&attachment))])
        .resolved_attachment(attachment)
        .by_admin()
}

const THREE: &str = "Plan offsites around decisions, not activities\n\
Decide beforehand which decisions need everyone in one room, and put them first.\n\
Topics: meetings, remote\n\
Asks: how do I plan an offsite? | our offsites feel like a waste of time\n\
\n\
Name one owner for every cross-team dependency\n\
When two teams disagree, one named person decides, and everyone knows who.\n\
\n\
Write the memo before the meeting\n\
A one-page memo read at the start of a meeting makes a better decision than slides.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_previews_then_saves_all_or_nothing_and_export_round_trips() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;

    let (asked, kind, preview) = send(&fake, &import_file(&fake, "team.txt", THREE)).await;
    assert_eq!(kind, 4, "{preview:#}");
    assert!(
        content(&preview).contains("**3 new**, **0 would replace**"),
        "{preview:#}"
    );
    let import = button_starting(&preview, "ins:import:");
    let (_, kind, done) = send(
        &fake,
        &button_click(&import, shown(&fake, &asked)).by_admin(),
    )
    .await;
    assert_eq!(kind, 7, "{done:#}");
    assert!(content(&done).contains("3 new, 0 replaced"), "{done:#}");
    assert_eq!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(GUILD_ID, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE
    );

    // The same file again: all three would replace.
    let (_, _, preview) = send(&fake, &import_file(&fake, "team.txt", THREE)).await;
    assert!(
        content(&preview).contains("**0 new**, **3 would replace**"),
        "{preview:#}"
    );

    // A file with errors changes nothing and lists each with its line.
    let broken = "Good one\nSome text.\n\nTopics: orphan\n\nTitle only\n";
    let (_, _, refused) = send(&fake, &import_file(&fake, "broken.txt", broken)).await;
    assert!(
        content(&refused).contains("nothing was imported"),
        "{refused:#}"
    );
    assert!(
        content(&refused).contains("line 4: a \\`Topics\\` line alone"),
        "{refused:#}"
    );
    assert!(
        content(&refused).contains("line 6: \"Title only\" has a title but no text"),
        "{refused:#}"
    );
    assert!(button_ids(&refused).is_empty());
    // Many errors: the full list comes as a text file.
    let many: String = (0..300).map(|i| format!("Title {i}\n\n")).collect();
    let interaction = import_file(&fake, "many.txt", &many).build();
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    let (_, refused) = answer_of(&fake, &interaction).await;
    assert!(
        content(&refused).contains("import-errors.txt"),
        "{refused:#}"
    );
    let files = fake.response_files(&interaction);
    let errors = files
        .iter()
        .find(|f| f.filename == "import-errors.txt")
        .expect("the errors file");
    assert_eq!(
        errors.text().matches("has a title but no text").count(),
        300
    );
    // A file declared over 1 MiB is refused before it is downloaded.
    let downloads = fake.attachment_downloads();
    let big = fake.host_attachment_with_size("big.txt", "text/plain", b"x".to_vec(), 2 << 20);
    let (_, _, refused) = send(
        &fake,
        &insights_cmd("import", vec![opt_attachment("file", id_of(&big))])
            .resolved_attachment(big)
            .by_admin(),
    )
    .await;
    assert!(content(&refused).contains("at most 1 MiB"), "{refused:#}");
    assert_eq!(fake.attachment_downloads(), downloads);
    // Still exactly the three.
    let (_, _, list) = send(&fake, &insights_cmd("list", vec![])).await;
    assert!(
        list["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("(3 own"),
        "{list:#}"
    );

    // Export: the data-file format, which imports back to the same insights elsewhere.
    let interaction = insights_cmd("export", vec![]).by_admin().build();
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    let (_, exported) = answer_of(&fake, &interaction).await;
    assert!(is_ephemeral(&exported));
    let files = fake.response_files(&interaction);
    assert_eq!(files.len(), 1, "{exported:#}");
    let toml = files[0].text();
    assert!(files[0].filename.ends_with(".toml"));
    let rules = Rules::server(insight_bot::collections::server_source(), None);
    let back = parse_import("export.toml", toml.as_bytes(), &rules).unwrap();
    let original = parse_import(
        "team.txt",
        THREE.as_bytes(),
        &Rules::server(
            insight_bot::collections::server_source(),
            Some(insight_bot::collections::DEFAULT_TOPIC.into()),
        ),
    )
    .unwrap();
    assert_eq!(back, original);
    let attachment = fake.host_attachment("export.toml", "application/toml", toml.into_bytes());
    let other = insights_cmd("import", vec![opt_attachment("file", id_of(&attachment))])
        .resolved_attachment(attachment)
        .in_guild(OTHER_GUILD, GENERAL_CHANNEL_ID, member(ada(), &[], None))
        .member_permissions(ADMIN_PERMISSIONS);
    let (asked, _, preview) = send(&fake, &other).await;
    assert!(content(&preview).contains("**3 new**"), "{preview:#}");
    let import = button_starting(&preview, "ins:import:");
    let click = button_click(&import, shown(&fake, &asked))
        .in_guild(OTHER_GUILD, GENERAL_CHANNEL_ID, member(ada(), &[], None))
        .member_permissions(ADMIN_PERMISSIONS);
    let (_, _, done) = send(&fake, &click).await;
    assert!(content(&done).contains("3 new"), "{done:#}");
    assert_eq!(
        advice_title(
            &fake,
            OFFSITE_QUESTION,
            advice_in(OTHER_GUILD, OFFSITE_QUESTION)
        )
        .await,
        OFFSITE_TITLE
    );
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_are_reviewed_by_curators_in_the_channel_and_suggesters_hear_by_dm() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let (_, _, set) = send(
        &fake,
        &insights_cmd(
            "review-channel",
            vec![opt_channel("channel", WEEKLY_CHANNEL_ID)],
        )
        .by_admin(),
    )
    .await;
    assert!(content(&set).contains("will be posted"), "{set:#}");

    // A member suggests.
    let suggester = fresh_user();
    let suggester_id: u64 = suggester["id"].as_str().unwrap().parse().unwrap();
    let as_suggester =
        |b: InteractionBuilder| b.in_guild_member(member(suggester.clone(), &[], None));
    let (_, kind, form) = send(&fake, &as_suggester(slash_command("suggest", vec![]))).await;
    assert_eq!(kind, 9);
    assert_eq!(form["custom_id"], "sug:new");
    let mark = fake.mark();
    let (_, _, thanks) = send(
        &fake,
        &as_suggester(modal_submit(
            "sug:new",
            &[
                ("title", OFFSITE_TITLE),
                ("text", "@everyone "),
                ("why", "Our last offsite was **wasted**"),
            ],
        )),
    )
    .await;
    // "@everyone " trims to a text; it is shown escaped in the review post.
    assert!(
        content(&thanks).contains("waiting for a curator"),
        "{thanks:#}"
    );
    let sent = fake
        .wait_for_channel_message_since(mark, WEEKLY_CHANNEL_ID, WAIT)
        .await;
    assert_no_pings(sent.json());
    let posted = fake
        .channel_messages(WEEKLY_CHANNEL_ID)
        .pop()
        .expect("the review post");
    let description = posted["embeds"][0]["description"].as_str().unwrap();
    assert!(!description.contains("@everyone"), "{description}");
    assert!(
        posted["embeds"][0].to_string().contains("\\\\*\\\\*wasted"),
        "{posted:#}"
    );
    let approve = button_starting(&posted, "sug:ok:");

    // A member who can see the channel clicks Approve: refused, still pending.
    let (_, kind, refused) = send(
        &fake,
        &button_click(&approve, posted.clone()).in_channel(WEEKLY_CHANNEL_ID),
    )
    .await;
    assert_eq!(kind, 4);
    assert!(content(&refused).contains("Only curators"), "{refused:#}");
    let (_, _, review) = send(&fake, &insights_cmd("review", vec![]).by_admin()).await;
    assert!(
        content(&review).contains("1 suggestion waiting"),
        "{review:#}"
    );

    // A curator approves from the channel: the post is updated, the suggester told.
    let (_, kind, decided) = send(
        &fake,
        &button_click(&approve, posted.clone())
            .in_channel(WEEKLY_CHANNEL_ID)
            .by_admin(),
    )
    .await;
    assert_eq!(kind, 7, "{decided:#}");
    assert!(content(&decided).contains("approved"), "{decided:#}");
    assert!(button_ids(&decided).is_empty());
    let dms = wait_for_dms(&fake, suggester_id, 1).await;
    assert!(content(&dms[0]).contains("was approved"), "{dms:#?}");
    // A second click (another curator at the same moment) decides nothing.
    let (_, _, again) = send(
        &fake,
        &button_click(&approve, posted.clone())
            .in_channel(WEEKLY_CHANNEL_ID)
            .by_admin(),
    )
    .await;
    assert!(content(&again).contains("already decided"), "{again:#}");

    // A rejection with a reason, from the curator's own review, to a member whose DMs are closed.
    let closed = fresh_user();
    let closed_id: u64 = closed["id"].as_str().unwrap().parse().unwrap();
    fake.close_dms(closed_id);
    let (_, _, _) = send(
        &fake,
        &modal_submit(
            "sug:new",
            &[("title", "Another idea"), ("text", "Some text.")],
        )
        .in_guild_member(member(closed.clone(), &[], None)),
    )
    .await;
    let (asked, _, review) = send(&fake, &insights_cmd("review", vec![]).by_admin()).await;
    assert!(is_ephemeral(&review));
    let reject = button_starting(&review, "sug:no:");
    let (_, kind, form) = send(
        &fake,
        &button_click(&reject, shown(&fake, &asked)).by_admin(),
    )
    .await;
    assert_eq!(kind, 9);
    let form_id = form["custom_id"].as_str().unwrap().to_string();
    let (_, kind, decided) = send(
        &fake,
        &modal_submit(&form_id, &[("reason", "We have one like it")])
            .with_message(shown(&fake, &asked))
            .by_admin(),
    )
    .await;
    assert_eq!(kind, 7, "{decided:#}");
    assert!(content(&decided).contains("rejected"), "{decided:#}");
    assert!(
        content(&decided).contains("No suggestions are waiting"),
        "{decided:#}"
    );
    tokio::time::sleep(QUIET).await;
    assert!(fake.dm_messages_to(closed_id).is_empty());
    // The approved suggestion answers questions now.
    let (_, _, list) = send(&fake, &insights_cmd("list", vec![])).await;
    assert!(list.to_string().contains(OFFSITE_ID), "{list:#}");
    stop_bot(&fake, bot).await;
}

async fn wait_for_dms(fake: &FakeDiscord, user: u64, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let dms = fake.dm_messages_to(user);
        if dms.len() >= count {
            return dms;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no DM to {user} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_may_have_five_suggestions_waiting() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let someone = member(fresh_user(), &[], None);
    for n in 0..5 {
        let title = format!("Idea {n}");
        let (_, _, thanks) = send(
            &fake,
            &modal_submit("sug:new", &[("title", &title), ("text", "Text.")])
                .in_guild_member(someone.clone()),
        )
        .await;
        assert!(
            content(&thanks).contains("waiting for a curator"),
            "{thanks:#}"
        );
    }
    let (_, _, refused) = send(
        &fake,
        &modal_submit("sug:new", &[("title", "Idea 6"), ("text", "Kept text.")])
            .in_guild_member(someone),
    )
    .await;
    assert!(content(&refused).contains("at most 5"), "{refused:#}");
    assert!(
        content(&refused).contains("Kept text."),
        "what was typed is shown back"
    );
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_and_own_only_reach_advice_and_the_weekly_post_and_survive_a_restart() {
    let fake = FakeDiscord::start().await;
    let (store, _dir) = fresh_store();
    let bot = start_bot_with_store(&fake, store.clone()).await;
    let (_, _, saved) = send(&fake, &offsite_form().by_admin()).await;
    assert!(content(&saved).contains(OFFSITE_ID));
    let (_, _, hidden) = send(
        &fake,
        &insights_cmd("hide", vec![opt_string("id", "manager-to-director")]).by_admin(),
    )
    .await;
    assert!(content(&hidden).contains("is hidden"), "{hidden:#}");
    let (_, _, _) = send(
        &fake,
        &insights_cmd("source", vec![opt_int("which", 1)]).by_admin(),
    )
    .await;
    bot.shutdown().await.unwrap();

    // A restart keeps everything.
    let bot = start_bot_with_store(&fake, store.clone()).await;
    let (_, _, list) = send(&fake, &insights_cmd("list", vec![])).await;
    let title = list["embeds"][0]["title"].as_str().unwrap();
    assert!(title.contains("1 (1 own, own only)"), "{title}");
    assert!(
        list.to_string().contains("manager-to-director"),
        "hidden ones are listed"
    );
    // Own only: every question gets the server's one insight or nothing.
    let title = advice_title(
        &fake,
        "just made dir, now what",
        advice_in(GUILD_ID, "just made dir, now what"),
    )
    .await;
    // Own only: the answer (or the random fallback of "no close match") can only be the
    // server's own insight, never the shipped one the question is about.
    assert_eq!(title, OFFSITE_TITLE);
    // The weekly post picks the server's own insight (the only one it may use).
    let schedule = insight_bot::weekly::schedule::Schedule::weekly(
        chrono::Weekday::Mon,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        chrono_tz::Europe::Paris,
    );
    store
        .blocking()
        .set_feed(
            insight_bot::weekly::feed::FeedId::new(GUILD_ID, WEEKLY_CHANNEL_ID),
            &insight_bot::store::FeedSpec::plain(schedule),
            chrono::Utc::now(),
        )
        .unwrap();
    let mark = fake.mark();
    let (_, _, posted) = send(
        &fake,
        &slash_command("weekly", vec![opt_subcommand("post-now", vec![])]).by_admin(),
    )
    .await;
    assert!(
        content(&posted).to_lowercase().contains("posted"),
        "{posted:#}"
    );
    let post = fake
        .wait_for_channel_message_since(mark, WEEKLY_CHANNEL_ID, WAIT)
        .await;
    let post = post.json();
    assert_eq!(
        post["embeds"][0]["author"]["name"], OFFSITE_TITLE,
        "{post:#}"
    );
    bot.shutdown().await.unwrap();
    fake.assert_all_bodies_valid();
}

/// The hostile import of the review: 1 MiB of `a\nb\n\n`, 209,715 insights all titled "a" (it
/// used to take over an hour of a runtime thread, N² in the ids).
fn hostile_import(fake: &FakeDiscord, guild: u64) -> Value {
    let body = "a\nb\n\n".repeat(insight_bot::insights::MAX_IMPORT_BYTES / 5);
    let attachment = fake.host_attachment("hostile.txt", "text/plain", body.into_bytes());
    insights_cmd("import", vec![opt_attachment("file", id_of(&attachment))])
        .resolved_attachment(attachment)
        .in_guild(
            guild,
            GENERAL_CHANNEL_ID,
            member(ada(), &[ADMIN_ROLE_ID], None),
        )
        .member_permissions(ADMIN_PERMISSIONS)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_imports_in_two_servers_leave_a_third_servers_advice_in_time() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let third = OTHER_GUILD + 1;
    let imports = [
        hostile_import(&fake, GUILD_ID),
        hostile_import(&fake, OTHER_GUILD),
    ];
    for import in &imports {
        fake.dispatch("INTERACTION_CREATE", import.clone()).await;
    }
    let advice = advice_in(third, "How do I stop micromanaging my team?").build();
    fake.dispatch("INTERACTION_CREATE", advice.clone()).await;
    let callback = fake.wait_for_callback(&advice, WAIT).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());
    let latency = fake
        .interaction_timing(&advice)
        .and_then(|t| t.latency())
        .expect("answered");
    assert!(
        latency < Duration::from_secs(3),
        "/advice answered after {latency:?}"
    );
    assert_eq!(callback.json()["type"], 4, "answered, not deferred");
    // Each hostile server gets a clear refusal, and nothing is held or saved.
    for import in &imports {
        let (_, message) = answer_of(&fake, import).await;
        let text = content(&message);
        assert!(
            text.contains("has 1 problem") && text.contains("more than 1000 insights"),
            "{text}"
        );
        assert!(button_ids(&message).is_empty(), "{message:#}");
    }
    stop_bot(&fake, bot).await;
}

/// The titles of the insights of `pack` in the whole library.
fn pack_titles(pack: &str) -> Vec<String> {
    library_catalog()
        .library()
        .insights()
        .iter()
        .filter(|i| i.pack == Some(pack))
        .map(|i| i.title.clone())
        .collect()
}

/// The topics only `pack`'s insights carry in the whole library.
fn topics_only_in(pack: &str) -> Vec<String> {
    let library = library_catalog().library().clone();
    let (inside, outside): (Vec<_>, Vec<_>) = library
        .insights()
        .iter()
        .partition(|i| i.pack == Some(pack));
    let mut only: Vec<String> = inside
        .iter()
        .flat_map(|i| i.topics.iter())
        .filter(|t| !outside.iter().any(|o| o.topics.contains(t)))
        .cloned()
        .collect();
    only.sort();
    only.dedup();
    only
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curator_turns_a_pack_off_and_the_servers_answers_and_topics_stop_using_it() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot_serving(&fake, library_catalog()).await;
    let hiring = pack_titles("hiring");
    assert!(hiring.len() >= 10);
    // A question the hiring pack answers: one of its own insights' example questions.
    let question = library_catalog()
        .library()
        .insights()
        .iter()
        .find(|i| i.pack == Some("hiring"))
        .unwrap()
        .asks[0]
        .clone();
    let answer = advice_title(&fake, &question, advice_in(GUILD_ID, &question)).await;
    assert!(hiring.contains(&answer), "{question:?} -> {answer:?}");

    // The list of packs, for curators only, every pack on.
    let (_, _, refused) = send(&fake, &insights_cmd("packs", vec![])).await;
    assert!(content(&refused).contains("Only curators"), "{refused:#}");
    let (asked, kind, page) = send(&fake, &insights_cmd("packs", vec![]).by_admin()).await;
    assert_eq!(kind, 4, "{page:#}");
    assert!(is_ephemeral(&page), "{page:#}");
    let packs = library_catalog().library().packs();
    assert_eq!(
        page["embeds"][0]["title"],
        format!(
            "Packs: {0} of {0} on, {1} insights",
            packs.len(),
            library_catalog().library().len()
        )
    );
    let listed = page["embeds"][0]["description"].as_str().unwrap();
    assert!(
        listed.contains("**Hiring and interviewing** · on · `hiring` · 10 insights"),
        "{listed}"
    );
    let ids = button_ids(&page);
    assert_eq!(ids.len(), packs.len(), "{ids:?}");
    assert!(
        ids.iter().all(|id| id.starts_with("ins:packoff:")),
        "{ids:?}"
    );
    assert_eq!(
        page["components"].as_array().unwrap().len(),
        packs.len().div_ceil(5),
        "five buttons a row"
    );

    // A member cannot press the button; a curator turns hiring off.
    let off = button_starting(&page, "ins:packoff:hiring");
    let (_, kind, refused) = send(&fake, &button_click(&off, shown(&fake, &asked))).await;
    assert_eq!(kind, 4, "{refused:#}");
    assert!(content(&refused).contains("Only curators"), "{refused:#}");
    let (_, kind, updated) =
        send(&fake, &button_click(&off, shown(&fake, &asked)).by_admin()).await;
    assert_eq!(kind, 7, "{updated:#}");
    assert!(content(&updated).contains("is off"), "{updated:#}");
    let listed = updated["embeds"][0]["description"].as_str().unwrap();
    assert!(listed.contains("· off · `hiring`"), "{listed}");
    button_starting(&updated, "ins:packon:hiring");
    // The same click again changes nothing (the button names the state it sets).
    let (_, _, again) = send(&fake, &button_click(&off, shown(&fake, &asked)).by_admin()).await;
    assert!(content(&again).contains("was already off"), "{again:#}");

    // The answer no longer comes from it, in this server only.
    let answer = advice_title(&fake, &question, advice_in(GUILD_ID, &question)).await;
    assert!(!hiring.contains(&answer), "{question:?} -> {answer:?}");
    let elsewhere = advice_title(&fake, &question, advice_in(OTHER_GUILD, &question)).await;
    assert!(hiring.contains(&elsewhere), "{question:?} -> {elsewhere:?}");
    let dm = slash_command("advice", vec![opt_string("question", &question)]).in_dm(fresh_user());
    assert!(hiring.contains(&advice_title(&fake, &question, dm).await));

    // Nor its topics: /topics leaves them out and /insight topic: does not know them.
    let only = topics_only_in("hiring");
    assert!(!only.is_empty());
    let topics_in = |guild: u64| {
        slash_command("topics", vec![]).in_guild(guild, GENERAL_CHANNEL_ID, fresh_member())
    };
    let (_, _, here) = send(&fake, &topics_in(GUILD_ID)).await;
    let (_, _, there) = send(&fake, &topics_in(OTHER_GUILD)).await;
    let topic_list = |m: &Value| m["embeds"][0]["description"].as_str().unwrap().to_string();
    for topic in &only {
        assert!(
            !topic_list(&here).contains(&format!("`{topic}`")),
            "{topic}"
        );
        assert!(
            topic_list(&there).contains(&format!("`{topic}`")),
            "{topic}"
        );
    }
    let (_, _, unknown) = send(
        &fake,
        &slash_command("insight", vec![opt_string("topic", &only[0])]).in_guild(
            GUILD_ID,
            GENERAL_CHANNEL_ID,
            fresh_member(),
        ),
    )
    .await;
    assert!(
        unknown["embeds"].as_array().is_none_or(|e| e.is_empty()),
        "{unknown:#}"
    );
    assert!(
        content(&unknown).contains(&only[0]) && content(&unknown).contains("/topics"),
        "{unknown:#}"
    );

    // /insights list names each insight's pack, and says a pack is off.
    let (_, _, list) = send(&fake, &insights_cmd("list", vec![])).await;
    let listed = list["embeds"][0]["description"].as_str().unwrap();
    assert!(listed.contains("· pack ic-and-management ·"), "{listed}");
    assert!(
        list["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("1 pack off"),
        "{list:#}"
    );

    // On again: the answer comes back.
    let on = button_starting(&updated, "ins:packon:hiring");
    let (_, kind, updated) = send(&fake, &button_click(&on, shown(&fake, &asked)).by_admin()).await;
    assert_eq!(kind, 7, "{updated:#}");
    assert!(content(&updated).contains("is on"), "{updated:#}");
    let answer = advice_title(&fake, &question, advice_in(GUILD_ID, &question)).await;
    assert!(hiring.contains(&answer), "{question:?} -> {answer:?}");
    stop_bot(&fake, bot).await;
}
