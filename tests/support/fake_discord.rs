//! An in-process fake Discord for the end-to-end tests: Discord's REST API (`/api/v10/...`) and
//! the gateway websocket (`/gateway`) on one 127.0.0.1 port, driven by the test.
//!
//! The real serenity client is pointed at it with [`FakeDiscord::http`] (an `HttpBuilder` with
//! `.proxy(base_url)` and `.ratelimiter_disabled(true)`; with the rate limiter on serenity ignores
//! the proxy) and `ClientBuilder::new_with_http`. The fake then:
//! - answers what serenity and poise call at startup (`GET /gateway`, which must never fail or
//!   serenity silently falls back to the real gateway; `GET /oauth2/applications/@me`; the bulk
//!   command registration `PUT`), the interaction callback and webhook routes, channel messages,
//!   channels, guilds, roles and members from a small configurable world, threads (Start Thread
//!   from Message, a forum post with its starter message, a thread without a message, List
//!   Active Guild Threads; see [`FakeDiscord::threads`]), and anything else with a recorded 404
//!   `{"message":"Unknown","code":0}`;
//! - speaks the gateway: HELLO, IDENTIFY -> READY (+ GUILD_CREATE for each configured guild),
//!   heartbeat ACKs, RESUME -> RESUMED, and delivers the dispatches the test sends with
//!   [`FakeDiscord::dispatch`], after checking that serenity can deserialize them (serenity drops
//!   a dispatch it cannot parse without a word);
//! - shards the gateway as Discord does: each IDENTIFY's `shard: [id, total]` (none means
//!   `[0, 1]`) starts one session (own connection, session id, sequence numbers, intents, history
//!   for RESUME), however many processes connect. A guild is on shard `(guild_id >> 22) % total`;
//!   READY and the GUILD_CREATEs after it list only that shard's guilds; a dispatch about a guild
//!   (its `guild_id`, or the `id` of a GUILD_CREATE/UPDATE/DELETE) goes to that guild's shard, a
//!   DM (no `guild_id`) to shard 0 only (see [`FakeDiscord::try_dispatch`], [`guild_shard`]).
//!   `GET /gateway/bot` recommends [`FakeDiscordBuilder::recommended_shards`] shards. A client
//!   closing with 1000 or 1001 ends its session, as on Discord (it is not resumable);
//! - checks the token ([`TOKEN`]): a REST call with another one answers 401, an IDENTIFY with
//!   another one is closed with 4004, as on Discord;
//! - records every request and lets the test wait for one, with a timeout whose panic says what
//!   never arrived and lists what did; a multipart request's file parts are kept byte for byte
//!   ([`RecordedRequest::files`], [`FakeDiscord::response_files`]), and the messages made from it
//!   carry `attachments` whose URLs the fake serves;
//! - serves files as Discord's CDN does, outside `/api/v10`: `GET /attachments/{channel}/{id}/
//!   {filename}` answers a file the test hosted ([`FakeDiscord::host_attachment`], for attachment
//!   options) or one the bot uploaded, and counts the downloads;
//! - keeps what the bot opened and changed: the modal of a MODAL callback
//!   ([`FakeDiscord::modal_response`]), messages edited by PATCH or by UPDATE_MESSAGE (in the
//!   channel's history), the DMs to each user ([`FakeDiscord::dm_messages_to`]; a user's DM
//!   channel is always the same one);
//! - times each interaction, from its frame written to the gateway socket to its callback
//!   received ([`FakeDiscord::interaction_timing`]), for latency measurements;
//! - injects faults: status codes, 429s with `retry_after`, slow responses, gateway closes;
//! - enforces a few Discord rules the bot must respect (an interaction is answered once, within
//!   3 s, with a callback type valid for it: no MODAL for a MODAL_SUBMIT, UPDATE_MESSAGE only for
//!   a component or a modal opened from one; message and embed length limits; each uploaded
//!   `files[n]` named by an `attachments` entry with id n, and back; no DM to a user whose DMs
//!   are closed, 403 50007; the bot's permissions in the channel, a thread having its parent's;
//!   one thread per message, 400 160004; no message posted straight into a forum, 400 50008);
//! - computes who a message the bot posts actually pings, from its content, `allowed_mentions`,
//!   the roles' `mentionable` and the bot's Mention Everyone, into the message's `mentions`,
//!   `mention_roles` and `mention_everyone` (see [`FakeDiscord::message`]);
//! - validates every request body against Discord's OpenAPI spec (see `openapi.rs`). A body that
//!   fails is a *problem*: every `wait_*` panics on a new problem, and so does dropping the fake
//!   at the end of a test, so a bad body cannot pass unnoticed.
//!
//! State lives behind one std `Mutex` (never held across an `.await`); a `watch` channel counts
//! changes so waiters wake on each new request or gateway event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State as AxumState;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::openapi::{upload_placeholders_to_strings, OpenApiSpec};
use super::payloads::{self, TestGuild, APP_ID};

/// The bot token the fake accepts (as `Authorization: Bot test.fake.token` on REST and as
/// IDENTIFY's `token`). It has the three dot-separated parts `insight_bot::config::Token::parse`
/// wants. Any other token is rejected as Discord does: 401 on REST (see [`REJECTED_TOKEN`]) and a
/// gateway close 4004.
pub const TOKEN: &str = "test.fake.token";
/// A well-shaped token the fake does not know: every REST call with it answers 401.
pub const REJECTED_TOKEN: &str = "wrong.fake.token";
/// A default timeout for waits: generous for a debug build on 2 busy cores, short enough that a
/// missing reply fails the test quickly.
pub const WAIT: Duration = Duration::from_secs(5);
/// Discord's deadline for the first response to an interaction.
pub const INTERACTION_DEADLINE: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Public records

/// One REST request as the fake received it, and how it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Position in the fake's request log (see [`FakeDiscord::mark`]).
    pub index: usize,
    pub method: String,
    /// The path as received, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// The raw query string; serenity writes `?&limit=5`, see [`Self::query_param`].
    pub query: Option<String>,
    /// The JSON body (for multipart requests, the `payload_json` part).
    pub body: Option<Value>,
    /// The files of a multipart request (its parts other than `payload_json`), in order.
    pub files: Vec<RecordedFile>,
    /// The `Authorization` header as sent (`Bot test.fake.token`), if any.
    pub authorization: Option<String>,
    /// The `User-Agent` header, if any: tells which process made the call when processes label
    /// themselves (serenity's `Http` always sends `DiscordBot (https://github.com/serenity-rs/...`).
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub received_at: Instant,
    /// Time since the fake started.
    pub since_start: Duration,
    /// The status the fake answered with.
    pub status: u16,
    /// The OpenAPI operation matched, e.g. `POST /channels/{channel_id}/messages`.
    pub operation: Option<String>,
    /// Why this body is invalid (OpenAPI schema or Discord limits), if it is.
    pub problem: Option<String>,
    /// Why the fake answered as it did, when that was not the normal answer (fault injected,
    /// unknown interaction, deadline passed...).
    pub note: Option<String>,
    /// True when no route of the fake handled it (answered 404 Unknown).
    pub unhandled: bool,
}

impl RecordedRequest {
    /// True when the method matches (`"*"` for any) and the path starts with `path_prefix`
    /// (given with or without the `/api/v10` prefix).
    pub fn is(&self, method: &str, path_prefix: &str) -> bool {
        (method == "*" || self.method.eq_ignore_ascii_case(method))
            && self.path.starts_with(&full_path(path_prefix))
    }

    /// The JSON body, or `Value::Null` when there was none.
    pub fn json(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.body.as_ref().unwrap_or(&NULL)
    }

    /// The JSON body as text ("" when none), for `contains` checks.
    pub fn body_text(&self) -> String {
        self.body.as_ref().map(Value::to_string).unwrap_or_default()
    }

    /// A query parameter's value (`limit` in `?&limit=5`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref(), name)
    }

    /// One line: index, time, method, path, status, notes.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "#{} +{:.3}s {} {}{} -> {}",
            self.index,
            self.since_start.as_secs_f64(),
            self.method,
            self.path,
            self.query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default(),
            self.status
        );
        if let Some(note) = &self.note {
            line += &format!(" ({note})");
        }
        if self.problem.is_some() {
            line += " [INVALID BODY]";
        }
        line
    }
}

/// A file part of a multipart request (`files[0]`, ...), bytes as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedFile {
    /// The form field's name: `files[n]` as Discord wants it.
    pub field_name: String,
    /// The part's `filename` (empty when it had none, which Discord refuses).
    pub filename: String,
    /// The part's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl RecordedFile {
    /// The `n` of a `files[n]` field: the placeholder id an `attachments` entry refers to it by.
    pub fn index(&self) -> Option<u64> {
        self.field_name
            .strip_prefix("files[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    }

    /// The bytes as text (lossy UTF-8), for `contains` checks.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Counters of the gateway side, over all shards (see [`FakeDiscord::shard_sessions`] for each
/// shard's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Websocket connections accepted.
    pub connections: u32,
    pub identifies: u32,
    pub resumes: u32,
    /// RESUMEs answered with RESUMED (the session id matched).
    pub resumed: u32,
    pub heartbeats: u32,
    /// Dispatches sent by the test (READY, RESUMED and GUILD_CREATE not counted), each counted
    /// once whatever the number of sessions it went to.
    pub dispatches: u32,
    /// Dispatches sent again on a RESUME (missed while the session was disconnected).
    pub replayed: u32,
    /// Every session is live (its connection finished IDENTIFY or RESUME and has not been closed
    /// since), and there is at least one. With one shard: that shard's session is live.
    pub session_live: bool,
    /// The last sequence number sent, on whichever session it went out.
    pub seq: u64,
    /// Sessions that exist (one per `(shard id, total)` IDENTIFYed, live or resumable).
    pub sessions: u32,
    /// Sessions with a live connection.
    pub live_sessions: u32,
}

/// A shard as Discord names it: `(id, total)`.
pub type Shard = (u32, u32);

/// One gateway session (one shard's), as [`FakeDiscord::shard_sessions`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSession {
    /// `(id, total)` from its IDENTIFY (`(0, 1)` when it had no `shard`).
    pub shard: Shard,
    pub session_id: String,
    /// A connection carries it (IDENTIFY or RESUME finished, not closed since); otherwise it is
    /// disconnected and resumable, its dispatches kept for the RESUME.
    pub live: bool,
    /// The last sequence number sent on it.
    pub seq: u64,
    /// The intents of its IDENTIFY.
    pub intents: u64,
    /// The guilds its READY listed (each followed by its GUILD_CREATE).
    pub guilds: Vec<u64>,
    /// Dispatches of the test sent (or queued) on it.
    pub dispatches: u32,
    /// Dispatches sent again on its RESUMEs.
    pub replayed: u32,
    /// RESUMEs answered with RESUMED.
    pub resumed: u32,
}

/// The shard a guild's events go to: `(guild_id >> 22) % total`, Discord's rule.
pub fn guild_shard(guild_id: u64, total: u32) -> u32 {
    ((guild_id >> 22) % u64::from(total.max(1))) as u32
}

/// The shard of an IDENTIFY's `d`: its `shard: [id, total]`, `(0, 1)` without one, `Err` (closed
/// 4010 "Invalid shard" by Discord) when malformed or `id >= total`.
pub fn identify_shard(identify: &Value) -> Result<Shard, String> {
    let shard = &identify["shard"];
    if shard.is_null() {
        return Ok((0, 1));
    }
    let parsed = shard.as_array().filter(|s| s.len() == 2).and_then(|s| {
        let id = u32::try_from(s[0].as_u64()?).ok()?;
        let total = u32::try_from(s[1].as_u64()?).ok()?;
        Some((id, total))
    });
    match parsed {
        Some((id, total)) if id < total => Ok((id, total)),
        _ => Err(format!(
            "invalid shard {shard}: Discord wants [id, total] with id < total"
        )),
    }
}

/// When an interaction went out and when its answer came back (see
/// [`FakeDiscord::interaction_timing`]).
#[derive(Clone, Copy, Debug)]
pub struct InteractionTiming {
    /// The INTERACTION_CREATE frame had been written to the gateway socket.
    pub dispatch_sent: Option<Instant>,
    /// The accepted callback request was received (its body read).
    pub callback_received: Option<Instant>,
}

impl InteractionTiming {
    /// Dispatch written -> callback received.
    pub fn latency(&self) -> Option<Duration> {
        Some(
            self.callback_received?
                .saturating_duration_since(self.dispatch_sent?),
        )
    }
}

/// What an injected fault does to a matching response.
#[derive(Clone, Copy, Debug)]
pub enum FaultKind {
    /// Answer with this status and a Discord-style error body instead of handling the request.
    Status(u16),
    /// Answer 429 with `retry_after` in the JSON body and the rate-limit headers.
    RateLimited { retry_after: Duration, global: bool },
    /// Handle the request normally but answer only after this delay: with a delay longer than
    /// the client's timeout, the message is created and the client never learns it.
    Delay(Duration),
    /// Handle the request normally (a message *is* created), then answer with this status, as
    /// when Discord's edge fails after the write: the answer is lost.
    StatusAfterHandling(u16),
    /// Handle the request normally (a message *is* created), then drop the connection without a
    /// complete answer, as a reset connection does.
    DropAfterHandling,
}

// ---------------------------------------------------------------------------------------------
// Internal state

struct Fault {
    method: String,
    prefix: String,
    remaining: usize,
    kind: FaultKind,
}

enum Outgoing {
    /// A frame; for an INTERACTION_CREATE dispatch, with the interaction's token so the time it
    /// was written to the socket is recorded (see [`FakeDiscord::interaction_timing`]).
    Text(String, Option<String>),
    Close(u16),
}

/// An open gateway connection.
struct Conn {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// The session it IDENTIFYed or RESUMEd (and still carries), once it has.
    session: Option<Shard>,
}

/// One shard's session.
struct Session {
    session_id: String,
    /// The connection carrying it (the session is live), or none (disconnected, resumable).
    conn: Option<u32>,
    /// The last sequence number sent on it.
    seq: u64,
    /// The intents of its IDENTIFY: which dispatches Discord would deliver.
    intents: u64,
    /// Every dispatch of the session, by sequence number (with an interaction's token), so a
    /// RESUME replays what the client missed, as Discord does.
    history: Vec<(u64, String, Option<String>)>,
    /// The guilds its READY listed.
    guilds: Vec<u64>,
    dispatches: u32,
    replayed: u32,
    resumed: u32,
}

#[derive(Default)]
struct Gateway {
    /// The counters; the derived fields are filled in by [`Gateway::stats`].
    stats: GatewayStats,
    /// Open connections by id (the number of the connection).
    conns: BTreeMap<u32, Conn>,
    /// One session per `(shard id, total)`.
    sessions: BTreeMap<Shard, Session>,
    identify_payloads: Vec<Value>,
    stop_heartbeat_acks: bool,
    /// IDENTIFY and RESUME are parked, unanswered, until this is turned off.
    hold_sessions: bool,
}

impl Gateway {
    fn stats(&self) -> GatewayStats {
        let mut stats = self.stats;
        stats.sessions = self.sessions.len() as u32;
        stats.live_sessions = self.sessions.values().filter(|s| s.conn.is_some()).count() as u32;
        stats.session_live = stats.sessions > 0 && stats.live_sessions == stats.sessions;
        stats
    }

    /// The sessions a dispatch for `target` goes to.
    fn owners(&self, target: Target) -> Vec<Shard> {
        self.sessions
            .keys()
            .filter(|&&shard| target.is_on(shard))
            .copied()
            .collect()
    }

    fn live(&self, shard: Shard) -> bool {
        self.sessions.get(&shard).is_some_and(|s| s.conn.is_some())
    }

    /// Forgets a connection (closed, or being closed): its session, if it still carried one, is
    /// disconnected and stays resumable. Returns it, if it was open.
    fn detach(&mut self, conn_id: u32) -> Option<Conn> {
        let conn = self.conns.remove(&conn_id)?;
        if let Some(session) = conn.session.and_then(|k| self.sessions.get_mut(&k)) {
            if session.conn == Some(conn_id) {
                session.conn = None;
            }
        }
        Some(conn)
    }

    /// Makes `conn_id` the connection of the session `shard` (after its IDENTIFY or RESUME), if
    /// the connection is still open. A connection the session had before is left open, unbound.
    fn bind(&mut self, conn_id: u32, shard: Shard) -> bool {
        if !self.conns.contains_key(&conn_id) || !self.sessions.contains_key(&shard) {
            return false;
        }
        let conn = self.conns.get_mut(&conn_id).expect("checked above");
        if let Some(previous) = conn.session.replace(shard).filter(|p| *p != shard) {
            if let Some(s) = self.sessions.get_mut(&previous) {
                if s.conn == Some(conn_id) {
                    s.conn = None;
                }
            }
        }
        let session = self.sessions.get_mut(&shard).expect("checked above");
        if let Some(old) = session.conn.replace(conn_id).filter(|&old| old != conn_id) {
            if let Some(c) = self.conns.get_mut(&old) {
                c.session = None;
            }
        }
        true
    }

    /// `shard 0/2 (live), shard 1/2 (disconnected)`, or `none`.
    fn describe_sessions(&self) -> String {
        if self.sessions.is_empty() {
            return "none".into();
        }
        self.sessions
            .iter()
            .map(|((id, total), s)| {
                let state = if s.conn.is_some() {
                    "live"
                } else {
                    "disconnected"
                };
                format!("shard {id}/{total} ({state})")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Why no session takes a dispatch for `target`.
    fn no_owner(&self, target: Target) -> String {
        let sessions = self.describe_sessions();
        match target {
            Target::Direct => format!(
                "it has no guild, and Discord sends DMs (and other events without a guild) on \
                 shard 0 only, but no session is shard 0; sessions: {sessions}"
            ),
            Target::Guild(guild) => {
                let mut totals: Vec<u32> = self.sessions.keys().map(|(_, t)| *t).collect();
                totals.sort_unstable();
                totals.dedup();
                let shards: Vec<String> = totals
                    .iter()
                    .map(|&t| {
                        format!(
                            "shard {} of {t} ({guild} >> 22 = {}, % {t} = {})",
                            guild_shard(guild, t),
                            guild >> 22,
                            guild_shard(guild, t)
                        )
                    })
                    .collect();
                format!(
                    "guild {guild} is on {} and no session runs that shard (no process runs it), \
                     so Discord would deliver it to no one; sessions: {sessions}",
                    shards.join(" / ")
                )
            }
        }
    }
}

/// Where Discord sends a dispatch: to the shard of a guild, or (no guild) to shard 0.
#[derive(Clone, Copy, Debug)]
enum Target {
    Guild(u64),
    Direct,
}

impl Target {
    fn of(event: &str, data: &Value) -> Target {
        if let Some(guild) = snowflake(&data["guild_id"]) {
            return Target::Guild(guild);
        }
        let guild_object = matches!(event, "GUILD_CREATE" | "GUILD_UPDATE" | "GUILD_DELETE");
        match snowflake(&data["id"]).filter(|_| guild_object) {
            Some(guild) => Target::Guild(guild),
            None => Target::Direct,
        }
    }

    fn is_on(self, (id, total): Shard) -> bool {
        match self {
            Target::Guild(guild) => guild_shard(guild, total) == id,
            Target::Direct => id == 0,
        }
    }
}

/// Gateway intents the fake enforces (Discord's bits).
const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
const INTENT_DIRECT_MESSAGES: u64 = 1 << 12;
const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

/// How long Discord remembers a message nonce for `enforce_nonce` ("the past few minutes"; the
/// fake takes the short end so that a test cannot lean on a longer window than Discord keeps).
const NONCE_WINDOW: Duration = Duration::from_secs(120);

struct InteractionRecord {
    id: String,
    kind: u64,
    channel_id: u64,
    /// The message a component interaction is attached to.
    message: Option<Value>,
    dispatched_at: Instant,
    /// When the dispatch's frame had been written to the gateway socket.
    sent_at: Option<Instant>,
    /// When the accepted callback (the first one not refused) was received.
    answered_at: Option<Instant>,
    /// The callback type once acknowledged.
    response_type: Option<u64>,
    /// The `data` of a MODAL (type 9) callback: the modal the bot opened.
    modal: Option<Value>,
    original: Option<u64>,
    followups: Vec<u64>,
}

#[derive(Default)]
struct World {
    channels: HashMap<u64, Value>,
    deleted_channels: HashSet<u64>,
    guilds: BTreeMap<u64, TestGuild>,
    /// Every message: configured by the test, or created by the bot (ephemeral ones included,
    /// but not listed in channel history).
    messages: BTreeMap<u64, Value>,
    /// Registered commands: `None` for global, `Some(guild)` for guild-scoped.
    commands: HashMap<Option<u64>, Vec<Value>>,
    interactions: HashMap<String, InteractionRecord>,
    /// Files the fake's CDN serves (`GET /attachments/{channel}/{id}/{filename}`), by attachment
    /// id: hosted by the test or uploaded by the bot.
    files: HashMap<u64, HostedFile>,
    /// `http://127.0.0.1:PORT`, for attachment URLs.
    base_url: String,
    /// Users whose DMs are closed to the bot (see [`FakeDiscord::close_dms`]).
    closed_dms: HashSet<u64>,
}

/// A file on the fake's CDN.
struct HostedFile {
    channel_id: u64,
    filename: String,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

impl World {
    fn channel(&self, channel_id: u64) -> Option<Value> {
        if self.deleted_channels.contains(&channel_id) {
            return None;
        }
        self.channels
            .get(&channel_id)
            .cloned()
            .or_else(|| self.guilds.values().find_map(|g| g.channel(channel_id)))
    }

    fn channel_guild(&self, channel_id: u64) -> Option<u64> {
        self.channel(channel_id)
            .and_then(|c| snowflake(&c["guild_id"]))
    }

    fn bot_message(
        &mut self,
        channel_id: u64,
        body: &Value,
        webhook: bool,
        files: &[RecordedFile],
    ) -> Value {
        let message_id = payloads::next_snowflake();
        self.bot_message_with_id(message_id, channel_id, body, webhook, files)
    }

    /// [`bot_message`](Self::bot_message) with a given id: a forum post's starter message has
    /// its thread's id. A message posted by the bot (not through a webhook) gets the mentions
    /// Discord would make of it (see [`apply_mentions`](Self::apply_mentions)).
    fn bot_message_with_id(
        &mut self,
        message_id: u64,
        channel_id: u64,
        body: &Value,
        webhook: bool,
        files: &[RecordedFile],
    ) -> Value {
        let mut m = payloads::message(message_id, channel_id, None, payloads::bot_user(), "");
        apply_message_edit(&mut m, body);
        self.apply_attachments(&mut m, body, files, true);
        for key in ["nonce", "tts"] {
            if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
                m[key] = v.clone();
            }
        }
        if let Some(r) = body.get("message_reference").filter(|r| !r.is_null()) {
            // As Discord answers it: no request-only `fail_if_not_exists`, no null ids.
            let in_channel = snowflake(&r["channel_id"]).unwrap_or(channel_id);
            let mut reference = json!({
                "type": r["type"].as_u64().unwrap_or(0),
                "message_id": r["message_id"],
                "channel_id": in_channel.to_string(),
            });
            let guild = snowflake(&r["guild_id"]).or_else(|| self.channel_guild(channel_id));
            if let Some(g) = guild {
                reference["guild_id"] = json!(g.to_string());
            }
            m["message_reference"] = reference;
            m["type"] = json!(19);
        }
        if webhook {
            m["webhook_id"] = json!(APP_ID.to_string());
            m["application_id"] = json!(APP_ID.to_string());
        } else {
            self.apply_mentions(&mut m, body);
        }
        self.count_in_thread(channel_id, message_id, 1);
        self.messages.insert(message_id, m.clone());
        m
    }

    /// Sets `mentions`, `mention_roles` and `mention_everyone` of a message the bot posts to
    /// what Discord would actually ping, from its content and the body's `allowed_mentions`:
    /// - a user (`<@id>`, `<@!id>`) when there is no `allowed_mentions`, or its `parse` has
    ///   `"users"`, or its `users` lists them; only users the fake knows are listed;
    /// - a role of the guild (`<@&id>`) likewise with `"roles"` / `roles`, and only if the role is
    ///   `mentionable` or the bot has Mention Everyone in the channel;
    /// - @everyone / @here when there is no `allowed_mentions` or its `parse` has `"everyone"`,
    ///   and only if the bot has Mention Everyone;
    /// - the author of the message replied to (`message_reference`) when there is no
    ///   `allowed_mentions` or its `replied_user` is true.
    ///
    /// `allowed_mentions` only ever narrows: an id it lists but the content does not mention
    /// pings nobody. Roles and @everyone are never pinged in a DM.
    fn apply_mentions(&self, message: &mut Value, body: &Value) {
        let channel = snowflake(&message["channel_id"]).and_then(|c| self.channel(c));
        let guild = channel
            .as_ref()
            .and_then(|c| snowflake(&c["guild_id"]))
            .and_then(|g| self.guilds.get(&g));
        let permissions = channel
            .as_ref()
            .and_then(|c| self.bot_permissions(c))
            .unwrap_or(0);
        let may_mention_everyone = permissions & payloads::MENTION_EVERYONE != 0;
        let allowed = body.get("allowed_mentions").filter(|a| !a.is_null());
        let parsed = |kind: &str| {
            allowed.is_none_or(|a| {
                a["parse"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|v| v == kind))
            })
        };
        let listed = |key: &str, id: u64| {
            allowed.is_some_and(|a| {
                a[key]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|v| snowflake(v) == Some(id)))
            })
        };
        let content = message["content"].as_str().unwrap_or_default().to_string();
        let mut users: Vec<Value> = Vec::new();
        let mut add_user = |user: Option<Value>| {
            if let Some(u) = user.filter(|u| !users.iter().any(|seen| seen["id"] == u["id"])) {
                users.push(u);
            }
        };
        let mut roles: Vec<Value> = Vec::new();
        for mention in content_mentions(&content) {
            match mention {
                Mention::User(id) if parsed("users") || listed("users", id) => {
                    add_user(known_user(guild, id));
                }
                Mention::Role(id) if parsed("roles") || listed("roles", id) => {
                    let role = guild.and_then(|g| {
                        g.roles
                            .iter()
                            .find(|r| snowflake(&r["id"]) == Some(id) && id != g.id)
                    });
                    let pings = role.is_some_and(|r| r["mentionable"] == true)
                        || (role.is_some() && may_mention_everyone);
                    let id = json!(id.to_string());
                    if pings && !roles.contains(&id) {
                        roles.push(id);
                    }
                }
                _ => {}
            }
        }
        let everyone = guild.is_some()
            && (content.contains("@everyone") || content.contains("@here"))
            && parsed("everyone")
            && may_mention_everyone;
        let replied = snowflake(&body["message_reference"]["message_id"])
            .and_then(|id| self.messages.get(&id))
            .filter(|_| allowed.is_none_or(|a| a["replied_user"] == true));
        if let Some(original) = replied {
            add_user(Some(original["author"].clone()));
        }
        message["mentions"] = Value::Array(users);
        message["mention_roles"] = Value::Array(roles);
        message["mention_everyone"] = json!(everyone);
    }

    /// Keeps a thread's counters as Discord does when a message is added (`delta` 1) to it or
    /// deleted (-1) from it: `message_count` (and, on adding, `total_message_sent` and
    /// `last_message_id`), never counting a forum post's starter message (which has the thread's
    /// id). Nothing for another channel.
    fn count_in_thread(&mut self, channel_id: u64, message_id: u64, delta: i64) {
        let Some(thread) = self.channels.get_mut(&channel_id).filter(|c| is_thread(c)) else {
            return;
        };
        if delta > 0 {
            thread["last_message_id"] = json!(message_id.to_string());
        }
        if message_id == channel_id {
            return;
        }
        let keys: &[&str] = if delta > 0 {
            &["message_count", "total_message_sent"]
        } else {
            &["message_count"]
        };
        for key in keys {
            let n = thread[*key].as_i64().unwrap_or(0) + delta;
            thread[*key] = json!(n.max(0));
        }
    }

    /// Creates a thread channel of type `kind` in `parent`, started by the bot (its only member),
    /// from a create-thread body: `name`, `auto_archive_duration` (else the parent's
    /// `default_auto_archive_duration`, else 1440), `rate_limit_per_user` (else the parent's
    /// `default_thread_rate_limit_per_user`, else 0), `applied_tags`, `invitable` (private).
    fn new_thread(&mut self, thread_id: u64, parent: &Value, kind: u8, body: &Value) -> Value {
        let archive = body["auto_archive_duration"]
            .as_u64()
            .or_else(|| parent["default_auto_archive_duration"].as_u64())
            .unwrap_or(1440);
        let mut thread = payloads::thread_channel(
            thread_id,
            snowflake(&parent["guild_id"]).unwrap_or(0),
            snowflake(&parent["id"]).unwrap_or(0),
            payloads::BOT_USER_ID,
            body["name"].as_str().unwrap_or_default(),
            kind,
            archive,
        );
        thread["rate_limit_per_user"] = json!(body["rate_limit_per_user"]
            .as_u64()
            .or_else(|| parent["default_thread_rate_limit_per_user"].as_u64())
            .unwrap_or(0));
        if let Some(tags) = body["applied_tags"].as_array() {
            thread["applied_tags"] = Value::Array(tags.clone());
        }
        if kind == 12 {
            thread["thread_metadata"]["invitable"] =
                json!(body["invitable"].as_bool().unwrap_or(true));
        }
        self.deleted_channels.remove(&thread_id);
        self.channels.insert(thread_id, thread.clone());
        thread
    }

    /// Every thread channel (not deleted), oldest first.
    fn threads(&self) -> Vec<Value> {
        let mut threads: Vec<(u64, Value)> = self
            .channels
            .iter()
            .filter(|(id, c)| is_thread(c) && !self.deleted_channels.contains(id))
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        threads.sort_by_key(|(id, _)| *id);
        threads.into_iter().map(|(_, c)| c).collect()
    }

    /// A stored message as Discord answers it: one that started a thread (HAS_THREAD) carries
    /// that thread, as it is now, in `thread`.
    fn rendered(&self, message: &Value) -> Value {
        let mut m = message.clone();
        if m["flags"].as_u64().unwrap_or(0) & HAS_THREAD != 0 {
            if let Some(thread) = snowflake(&m["id"])
                .and_then(|id| self.channel(id))
                .filter(is_thread)
            {
                m["thread"] = thread;
            }
        }
        m
    }

    /// Puts a file on the fake's CDN and returns its attachment object. `declared_size` is the
    /// `size` the object reports (the bytes' length unless a test lies).
    fn host(
        &mut self,
        channel_id: u64,
        filename: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
        declared_size: Option<u64>,
    ) -> Value {
        let id = payloads::next_snowflake();
        let url = format!(
            "{}/attachments/{channel_id}/{id}/{}",
            self.base_url,
            percent_encode(filename)
        );
        let size = declared_size.unwrap_or(bytes.len() as u64);
        let attachment = payloads::attachment(id, filename, content_type, size, &url);
        self.files.insert(
            id,
            HostedFile {
                channel_id,
                filename: filename.to_string(),
                content_type: content_type.map(str::to_owned),
                bytes,
            },
        );
        attachment
    }

    /// Sets a message's `attachments` from a create or edit body and the files uploaded with it,
    /// as Discord does: each `attachments` entry keeps the message's attachment with that id, or
    /// attaches the uploaded `files[id]` (under the entry's `filename` when given). Creating, a
    /// file without an entry is attached too; editing, a body without `attachments` leaves them
    /// as they were (new files are not added).
    fn apply_attachments(
        &mut self,
        message: &mut Value,
        body: &Value,
        files: &[RecordedFile],
        create: bool,
    ) {
        let channel_id = snowflake(&message["channel_id"]).unwrap_or(0);
        let existing = message["attachments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let upload = |this: &mut World, file: &RecordedFile, entry: Option<&Value>| {
            let filename = entry
                .and_then(|e| e["filename"].as_str())
                .unwrap_or(&file.filename)
                .to_string();
            let mut a = this.host(
                channel_id,
                &filename,
                file.content_type.as_deref(),
                file.bytes.clone(),
                None,
            );
            if let Some(d) = entry.and_then(|e| e["description"].as_str()) {
                a["description"] = json!(d);
            }
            a
        };
        let mut attachments = Vec::new();
        match body.get("attachments").and_then(Value::as_array) {
            Some(entries) => {
                let mut used = HashSet::new();
                for entry in entries {
                    let Some(id) = snowflake(&entry["id"]) else {
                        continue;
                    };
                    if let Some(kept) = existing.iter().find(|a| snowflake(&a["id"]) == Some(id)) {
                        attachments.push(kept.clone());
                    } else if let Some(file) = files.iter().find(|f| f.index() == Some(id)) {
                        used.insert(id);
                        attachments.push(upload(self, file, Some(entry)));
                    }
                }
                if create {
                    for file in files
                        .iter()
                        .filter(|f| !f.index().is_some_and(|n| used.contains(&n)))
                    {
                        attachments.push(upload(self, file, None));
                    }
                }
            }
            None if create => {
                for file in files {
                    attachments.push(upload(self, file, None));
                }
            }
            None => return,
        }
        message["attachments"] = Value::Array(attachments);
    }

    /// Whether an attachment with this id exists (on the CDN or on a message).
    fn attachment_exists(&self, id: u64) -> bool {
        self.files.contains_key(&id)
            || self.messages.values().any(|m| {
                m["attachments"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| snowflake(&a["id"]) == Some(id)))
            })
    }

    /// The DM channels with `user_id`, oldest first.
    fn dm_channels_of(&self, user_id: u64) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .channels
            .iter()
            .filter(|(id, c)| {
                !self.deleted_channels.contains(id)
                    && c["type"] == 1
                    && snowflake(&c["recipients"][0]["id"]) == Some(user_id)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The bot's permissions in a server channel (`None` for a DM or another private channel).
    /// A thread has its parent channel's permissions, as on Discord.
    fn bot_permissions(&self, channel: &Value) -> Option<u64> {
        let guild = self.guilds.get(&snowflake(&channel["guild_id"])?)?;
        let parent = snowflake(&channel["parent_id"])
            .filter(|_| is_thread(channel))
            .and_then(|p| self.channel(p));
        let channel = parent.as_ref().unwrap_or(channel);
        Some(permissions_in(guild, channel, payloads::BOT_USER_ID))
    }

    /// With `enforce_nonce`, the bot's message in this channel with the same nonce created within
    /// [`NONCE_WINDOW`], if any: Discord answers it instead of creating another.
    fn same_nonce(&self, channel_id: u64, body: &Value) -> Option<Value> {
        if body["enforce_nonce"] != json!(true) {
            return None;
        }
        let nonce = body.get("nonce").filter(|n| !n.is_null())?;
        let oldest = payloads::snowflake_at(std::time::SystemTime::now() - NONCE_WINDOW);
        self.messages
            .range(oldest..)
            .map(|(_, m)| m)
            .find(|m| {
                snowflake(&m["channel_id"]) == Some(channel_id)
                    && snowflake(&m["author"]["id"]) == Some(payloads::BOT_USER_ID)
                    && m.get("nonce") == Some(nonce)
            })
            .cloned()
    }

    fn history(&self, channel_id: u64) -> Vec<Value> {
        self.messages
            .values()
            .rev()
            .filter(|m| snowflake(&m["channel_id"]) == Some(channel_id))
            .filter(|m| m["flags"].as_u64().unwrap_or(0) & EPHEMERAL == 0)
            .map(|m| self.rendered(m))
            .collect()
    }
}

/// Whether a channel object is a thread: ANNOUNCEMENT_THREAD (10), PUBLIC_THREAD (11) or
/// PRIVATE_THREAD (12).
fn is_thread(channel: &Value) -> bool {
    matches!(channel["type"].as_u64(), Some(10..=12))
}

/// A user or role mention in message content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mention {
    /// `<@id>` or `<@!id>`.
    User(u64),
    /// `<@&id>`.
    Role(u64),
}

/// The user and role mentions in message content, in order (repeats included).
fn content_mentions(content: &str) -> Vec<Mention> {
    let mut found = Vec::new();
    let mut rest = content;
    while let Some(at) = rest.find("<@") {
        rest = &rest[at + 2..];
        let (role, digits) = match rest.as_bytes().first() {
            Some(b'&') => (true, &rest[1..]),
            Some(b'!') => (false, &rest[1..]),
            _ => (false, rest),
        };
        let Some(end) = digits.find('>') else {
            break;
        };
        let id = &digits[..end];
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = id.parse() {
                found.push(if role {
                    Mention::Role(id)
                } else {
                    Mention::User(id)
                });
            }
        }
    }
    found
}

/// A user the fake knows by id: a member of `guild`, else one of the test world's users.
fn known_user(guild: Option<&TestGuild>, user_id: u64) -> Option<Value> {
    guild
        .and_then(|g| g.member(user_id))
        .map(|m| m["user"].clone())
        .or_else(|| {
            [
                payloads::alice(),
                payloads::ada(),
                payloads::bot_user(),
                payloads::user(payloads::OWNER_ID, "owner", false),
            ]
            .into_iter()
            .find(|u| snowflake(&u["id"]) == Some(user_id))
        })
}

struct State {
    requests: Vec<RecordedRequest>,
    /// Invalid bodies, in arrival order; `problems_reported` of them already made a test panic.
    problems: Vec<String>,
    problems_reported: usize,
    faults: Vec<Fault>,
    gateway: Gateway,
    world: World,
}

struct Inner {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    started: Instant,
    ws_url: String,
    spec: Option<Arc<OpenApiSpec>>,
    heartbeat_interval: Duration,
    interaction_deadline: Option<Duration>,
    recommended_shards: u32,
}

impl Inner {
    /// Locks the state; a panic elsewhere while it was held does not make it unusable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes every waiter.
    fn bump(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;
/// Message flag: a thread was started from this message.
const HAS_THREAD: u64 = 1 << 5;
/// Forum channel flag: a post needs at least one tag.
const REQUIRE_TAG: u64 = 1 << 4;

// ---------------------------------------------------------------------------------------------
// The fake

/// Configures a [`FakeDiscord`] before it starts.
#[derive(Debug)]
pub struct FakeDiscordBuilder {
    heartbeat_interval: Duration,
    guilds: Vec<TestGuild>,
    interaction_deadline: Option<Duration>,
    spec: Option<Option<Arc<OpenApiSpec>>>,
    recommended_shards: u32,
}

impl FakeDiscordBuilder {
    /// HELLO's `heartbeat_interval` (default 1000 ms; serenity heartbeats one interval after
    /// IDENTIFY).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// The guilds the bot is in: listed in READY, each followed by its GUILD_CREATE, and served
    /// by the REST routes. Default: the standard [`TestGuild`].
    pub fn guilds(mut self, guilds: Vec<TestGuild>) -> Self {
        self.guilds = guilds;
        self
    }

    /// How long after the dispatch an interaction callback is still accepted (default 3 s, as on
    /// Discord; `None` for no limit).
    pub fn interaction_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.interaction_deadline = deadline;
        self
    }

    /// The shard count `GET /gateway/bot` recommends (default 1): what serenity's
    /// `start_autosharded` starts. The fake serves any shard count a client IDENTIFYs with.
    pub fn recommended_shards(mut self, shards: u32) -> Self {
        assert!(shards >= 1, "Discord recommends at least one shard");
        self.recommended_shards = shards;
        self
    }

    /// Turns body validation off. For benchmarks only (it would dominate what they measure);
    /// every test validates every body against [`OpenApiSpec::from_env`].
    pub fn without_body_validation(mut self) -> Self {
        self.spec = Some(None);
        self
    }

    /// Binds 127.0.0.1 on a free port and serves REST and gateway there.
    pub async fn start(self) -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Discord to 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let mut world = World {
            base_url: format!("http://{addr}"),
            ..World::default()
        };
        let dm = payloads::dm_channel(payloads::DM_CHANNEL_ID, payloads::alice());
        world.channels.insert(payloads::DM_CHANNEL_ID, dm);
        for guild in self.guilds {
            world.guilds.insert(guild.id, guild);
        }
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                requests: Vec::new(),
                problems: Vec::new(),
                problems_reported: 0,
                faults: Vec::new(),
                gateway: Gateway::default(),
                world,
            }),
            changes: watch::channel(0).0,
            started: Instant::now(),
            ws_url: format!("ws://{addr}/gateway"),
            spec: self.spec.unwrap_or_else(|| Some(OpenApiSpec::from_env())),
            heartbeat_interval: self.heartbeat_interval,
            interaction_deadline: self.interaction_deadline,
            recommended_shards: self.recommended_shards,
        });
        let app = Router::new()
            .route("/gateway", get(gateway_upgrade))
            .fallback(rest)
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            // No Nagle delay on the fake's side: a gateway frame or a response goes out at once,
            // as from Discord, so measured latencies are the bot's.
            axum::serve(listener, app)
                .tcp_nodelay(true)
                .await
                .expect("the fake Discord's server failed");
        });
        FakeDiscord {
            inner,
            addr,
            server,
        }
    }
}

/// The fake Discord. Dropping it stops the server, and panics if a request body was invalid and
/// no wait or assertion has reported it yet.
pub struct FakeDiscord {
    inner: Arc<Inner>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscord")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeDiscord {
    /// A fake with the defaults (see [`FakeDiscordBuilder`]).
    pub async fn start() -> FakeDiscord {
        Self::builder().start().await
    }

    pub fn builder() -> FakeDiscordBuilder {
        FakeDiscordBuilder {
            heartbeat_interval: Duration::from_millis(1000),
            guilds: vec![TestGuild::default()],
            interaction_deadline: Some(INTERACTION_DEADLINE),
            spec: None,
            recommended_shards: 1,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the value for serenity's `HttpBuilder::proxy` (and the bot's
    /// `DISCORD_API_BASE`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/gateway`, what `GET /gateway` answers.
    pub fn ws_url(&self) -> String {
        self.inner.ws_url.clone()
    }

    /// A serenity `Http` that talks to this fake (proxy + rate limiter off, application id set).
    pub fn http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(TOKEN)
            .proxy(self.base_url())
            .ratelimiter_disabled(true)
            .application_id(serenity::model::id::ApplicationId::new(APP_ID))
            .build()
    }

    /// Whether bodies are validated against the OpenAPI spec.
    pub fn validates_bodies(&self) -> bool {
        self.inner.spec.is_some()
    }

    // -- gateway ------------------------------------------------------------------------------

    /// Sends a dispatch (`op` 0) with the next sequence number of the session it goes to, and
    /// returns that number. The session is the one of the shard Discord would send it on: a
    /// guild's shard (`(guild_id >> 22) % total`, from the dispatch's `guild_id`, or the `id` of
    /// a GUILD_CREATE/UPDATE/DELETE) or, without a guild (DMs), shard 0. Waits (up to [`WAIT`])
    /// for that session to exist. While it is disconnected (the bot resuming after
    /// [`close_gateway`](Self::close_gateway)), the dispatch is kept and replayed on RESUME, as
    /// Discord does. With sessions of several shard totals at once (a re-shard), every session
    /// whose shard it is gets it; the number returned is the first one's (by `(id, total)`).
    ///
    /// # Panics
    /// When Discord would not send it (see [`try_dispatch`](Self::try_dispatch)), when serenity
    /// could not deserialize it (it would drop it silently), or when no session began in time.
    pub async fn dispatch(&self, event: &str, data: Value) -> u64 {
        match self.try_dispatch(event, data).await {
            Ok(seq) => seq,
            Err(e) => panic!("fake Discord: refusing to dispatch {event}: {e}"),
        }
    }

    /// Like [`dispatch`](Self::dispatch), but `Err` with the reason when Discord would not send
    /// this dispatch to the bot at all: sessions exist but none is on the dispatch's shard (no
    /// process runs the shard of that guild, or shard 0 for a DM) after waiting [`WAIT`] for
    /// one; a MESSAGE_CREATE the session's intents exclude; or an application command whose
    /// options break the registered command's rules (an unknown command or option, a string
    /// outside `min_length`/`max_length`, a number outside its range, a value not among its
    /// choices, a missing required option): Discord's client refuses to send those.
    ///
    /// # Panics
    /// When serenity could not deserialize it, or when no session at all began in time.
    pub async fn try_dispatch(&self, event: &str, data: Value) -> Result<u64, String> {
        self.try_dispatch_within(event, data, WAIT).await
    }

    /// [`try_dispatch`](Self::try_dispatch), waiting at most `wait` for a session on the
    /// dispatch's shard (a short `wait` makes "no process runs that shard" fail fast).
    pub async fn try_dispatch_within(
        &self,
        event: &str,
        mut data: Value,
        wait: Duration,
    ) -> Result<u64, String> {
        if let Err(e) = check_dispatch(event, &data) {
            panic!("fake Discord: refusing to dispatch {event}: {e}\n  data: {data}");
        }
        let target = Target::of(event, &data);
        self.wait_until(wait, |st| {
            (!st.gateway.owners(target).is_empty()).then_some(())
        })
        .await;
        let mut guard = self.inner.lock();
        let st = &mut *guard;
        let owners = st.gateway.owners(target);
        if owners.is_empty() {
            if st.gateway.sessions.is_empty() {
                drop(guard);
                let what = format!("a gateway session to dispatch {event} to");
                panic!("{}", self.timeout_report(&what, wait));
            }
            return Err(st.gateway.no_owner(target));
        }
        if event == "INTERACTION_CREATE" && data["type"] == 2 {
            check_command_options(&st.world, &data)?;
        }
        // Each session gets the dispatch as its own intents shape it.
        let mut texts = Vec::with_capacity(owners.len());
        for (i, &shard) in owners.iter().enumerate() {
            let mut shaped = data.clone();
            if event == "MESSAGE_CREATE" {
                let intents = st.gateway.sessions[&shard].intents;
                filter_message_by_intents(intents, &mut shaped)
                    .map_err(|e| format!("shard {}/{}: {e}", shard.0, shard.1))?;
            }
            texts.push(shaped.to_string());
            if i == 0 {
                data = shaped;
            }
        }
        let sends: Vec<(Shard, &str)> = owners
            .iter()
            .copied()
            .zip(texts.iter().map(String::as_str))
            .collect();
        let seq = send_dispatch(st, event, &data, &sends).expect("the sessions exist");
        drop(guard);
        self.inner.bump();
        Ok(seq)
    }

    /// Sends many dispatches of one kind back to back, under one lock, after checking them all
    /// (see [`dispatch`](Self::dispatch)) and waiting until the session of each one's shard is
    /// live: a burst that the test's own work does not slow down. Returns their sequence numbers.
    ///
    /// # Panics
    /// As [`dispatch`](Self::dispatch); also when, after [`WAIT`], one of them has no session on
    /// its shard.
    pub async fn dispatch_all(&self, event: &str, data: &[Value]) -> Vec<u64> {
        for d in data {
            if let Err(e) = check_dispatch(event, d) {
                panic!("fake Discord: refusing to dispatch {event}: {e}\n  data: {d}");
            }
        }
        // Serialized before taking the lock, which the fake's REST side needs too.
        let texts: Vec<String> = data.iter().map(Value::to_string).collect();
        let targets: Vec<Target> = data.iter().map(|d| Target::of(event, d)).collect();
        let sent = self
            .wait_until(WAIT, |st| {
                let owners: Vec<Vec<Shard>> =
                    targets.iter().map(|t| st.gateway.owners(*t)).collect();
                let all_live = owners
                    .iter()
                    .all(|o| !o.is_empty() && o.iter().all(|&s| st.gateway.live(s)));
                all_live.then(|| {
                    data.iter()
                        .zip(&texts)
                        .zip(owners)
                        .filter_map(|((d, text), owners)| {
                            let sends: Vec<(Shard, &str)> =
                                owners.into_iter().map(|s| (s, text.as_str())).collect();
                            send_dispatch(st, event, d, &sends)
                        })
                        .collect()
                })
            })
            .await;
        if let Some(seqs) = sent {
            return seqs;
        }
        let st = self.inner.lock();
        let unowned = targets
            .iter()
            .find(|t| st.gateway.owners(**t).is_empty())
            .filter(|_| !st.gateway.sessions.is_empty());
        if let Some(target) = unowned {
            panic!(
                "fake Discord: refusing to dispatch {event}: {}",
                st.gateway.no_owner(*target)
            );
        }
        drop(st);
        let what = format!(
            "live gateway sessions to dispatch {} {event} to",
            data.len()
        );
        panic!("{}", self.timeout_report(&what, WAIT));
    }

    /// Closes every gateway connection with `code` (4000 "unknown error": the bot must RESUME).
    /// The sessions stay resumable. No-op when no connection is open.
    pub fn close_gateway(&self, code: u16) {
        {
            let mut st = self.inner.lock();
            let ids: Vec<u32> = st.gateway.conns.keys().copied().collect();
            for id in ids {
                if let Some(conn) = st.gateway.detach(id) {
                    let _ = conn.tx.send(Outgoing::Close(code));
                }
            }
        }
        self.inner.bump();
    }

    /// Closes the connection of every live session on shard `shard_id` (whatever its total) with
    /// `code`; the sessions stay resumable, the other shards are untouched. Returns how many
    /// connections were closed.
    pub fn close_shard(&self, shard_id: u32, code: u16) -> usize {
        let closed = {
            let mut st = self.inner.lock();
            let conns: Vec<u32> = st
                .gateway
                .sessions
                .iter()
                .filter(|((id, _), _)| *id == shard_id)
                .filter_map(|(_, s)| s.conn)
                .collect();
            for &id in &conns {
                if let Some(conn) = st.gateway.detach(id) {
                    let _ = conn.tx.send(Outgoing::Close(code));
                }
            }
            conns.len()
        };
        self.inner.bump();
        closed
    }

    /// Stops (or resumes) acknowledging heartbeats: serenity then treats the connection as a
    /// zombie and reconnects.
    pub fn stop_heartbeat_acks(&self, stop: bool) {
        self.inner.lock().gateway.stop_heartbeat_acks = stop;
    }

    /// Holds (or releases) every IDENTIFY and RESUME: while held they stay unanswered (and
    /// uncounted), as when Discord is slow to accept a session; on release they are answered in
    /// the order received. Heartbeats are still acknowledged. Makes "dispatched while the bot
    /// was disconnected" deterministic: serenity reconnects within milliseconds of a close, so
    /// without a hold its RESUME can come before the test's next dispatch:
    /// `hold_sessions(true); close_shard(..); dispatch(..); hold_sessions(false)`.
    pub fn hold_sessions(&self, hold: bool) {
        self.inner.lock().gateway.hold_sessions = hold;
        self.inner.bump();
    }

    pub fn gateway_stats(&self) -> GatewayStats {
        self.inner.lock().gateway.stats()
    }

    /// The live sessions' shards, `(id, total)`, in order.
    pub fn shards_live(&self) -> Vec<Shard> {
        let st = self.inner.lock();
        st.gateway
            .sessions
            .iter()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Every session (live or resumable), by `(id, total)`.
    pub fn shard_sessions(&self) -> Vec<ShardSession> {
        let st = self.inner.lock();
        st.gateway
            .sessions
            .iter()
            .map(|(&shard, s)| ShardSession {
                shard,
                session_id: s.session_id.clone(),
                live: s.conn.is_some(),
                seq: s.seq,
                intents: s.intents,
                guilds: s.guilds.clone(),
                dispatches: s.dispatches,
                replayed: s.replayed,
                resumed: s.resumed,
            })
            .collect()
    }

    /// The session of one shard, if it exists.
    pub fn shard_session(&self, shard: Shard) -> Option<ShardSession> {
        self.shard_sessions().into_iter().find(|s| s.shard == shard)
    }

    /// The `d` of every IDENTIFY received (intents, shard, properties...).
    pub fn identify_payloads(&self) -> Vec<Value> {
        self.inner.lock().gateway.identify_payloads.clone()
    }

    /// Waits until every session is live (IDENTIFY answered with READY, or RESUME with RESUMED,
    /// and not closed since) and there is at least one. With several processes, wait for their
    /// shards with [`wait_for_shards`](Self::wait_for_shards): this one may see the first alone.
    pub async fn wait_for_ready(&self, timeout: Duration) -> GatewayStats {
        self.wait_for_gateway("the bot to IDENTIFY or RESUME", timeout, |s| s.session_live)
            .await
    }

    /// Waits until the sessions of all `shards` (`(id, total)`) are live.
    pub async fn wait_for_shards(&self, shards: &[Shard], timeout: Duration) -> GatewayStats {
        let what = format!("live gateway sessions on shards {shards:?}");
        self.wait_state(&what, timeout, |st| {
            shards
                .iter()
                .all(|&s| st.gateway.live(s))
                .then(|| st.gateway.stats())
        })
        .await
    }

    /// Waits until `pred` holds for the gateway counters.
    pub async fn wait_for_gateway(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&GatewayStats) -> bool,
    ) -> GatewayStats {
        self.wait_state(what, timeout, |st| {
            let stats = st.gateway.stats();
            pred(&stats).then_some(stats)
        })
        .await
    }

    // -- faults ---------------------------------------------------------------------------------

    /// Answers the next `times` requests matching `method` (`"*"` for any) and `path_prefix`
    /// (with or without `/api/v10`) with `status` and a Discord-style error body.
    pub fn fail_next(&self, method: &str, path_prefix: &str, times: usize, status: u16) {
        self.add_fault(method, path_prefix, times, FaultKind::Status(status));
    }

    /// Answers the next `times` matching requests with 429 and `retry_after`.
    pub fn rate_limit_next(
        &self,
        method: &str,
        path_prefix: &str,
        times: usize,
        retry_after: Duration,
    ) {
        let kind = FaultKind::RateLimited {
            retry_after,
            global: false,
        };
        self.add_fault(method, path_prefix, times, kind);
    }

    /// Delays the answers to the next `times` matching requests (`usize::MAX`: all of them).
    pub fn delay_next(&self, method: &str, path_prefix: &str, times: usize, delay: Duration) {
        self.add_fault(method, path_prefix, times, FaultKind::Delay(delay));
    }

    /// Adds a fault; faults are tried in the order added, the first match with uses left wins.
    pub fn add_fault(&self, method: &str, path_prefix: &str, times: usize, kind: FaultKind) {
        self.inner.lock().faults.push(Fault {
            method: method.to_string(),
            prefix: full_path(path_prefix),
            remaining: times,
            kind,
        });
    }

    /// Removes every fault not used up yet.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    // -- the world ------------------------------------------------------------------------------

    /// Adds or replaces a guild (REST data only; dispatch its GUILD_CREATE yourself if the bot
    /// should hear of it).
    pub fn install_guild(&self, guild: TestGuild) {
        self.inner.lock().world.guilds.insert(guild.id, guild);
    }

    /// Adds or replaces a channel object (`GET /channels/{id}`); guild channels of installed
    /// guilds are known already.
    pub fn add_channel(&self, channel: Value) {
        let id = snowflake(&channel["id"]).expect("channel id");
        let mut st = self.inner.lock();
        st.world.deleted_channels.remove(&id);
        st.world.channels.insert(id, channel);
    }

    /// From now on the channel answers 404 Unknown Channel (10003), as a deleted one does.
    pub fn delete_channel(&self, channel_id: u64) {
        self.inner.lock().world.deleted_channels.insert(channel_id);
    }

    /// The roles of `user_id` in an installed guild, as the fake keeps them (Add / Remove Guild
    /// Member Role change them).
    pub fn member_roles(&self, guild_id: u64, user_id: u64) -> Vec<u64> {
        let st = self.inner.lock();
        st.world
            .guilds
            .get(&guild_id)
            .and_then(|g| g.member(user_id))
            .and_then(|m| m["roles"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(snowflake)
            .collect()
    }

    /// Adds a member to an installed guild.
    pub fn add_member(&self, guild_id: u64, member: Value) {
        let mut st = self.inner.lock();
        let guild = st
            .world
            .guilds
            .get_mut(&guild_id)
            .expect("add_member: guild not installed");
        guild.members.push(member);
    }

    /// Adds a message to its channel's history (`GET /channels/{id}/messages`).
    pub fn add_message(&self, message: Value) {
        let id = snowflake(&message["id"]).expect("message id");
        assert!(
            snowflake(&message["channel_id"]).is_some(),
            "message without channel_id"
        );
        self.inner.lock().world.messages.insert(id, message);
    }

    /// A channel's history as the fake serves it: configured and bot-posted messages, newest
    /// first (ephemeral replies excluded).
    pub fn channel_messages(&self, channel_id: u64) -> Vec<Value> {
        self.inner.lock().world.history(channel_id)
    }

    /// One stored message (any channel, ephemeral ones included) as `GET` answers it, with the
    /// mentions Discord would have made of it (`mentions`, `mention_roles`, `mention_everyone`:
    /// who was actually pinged) and, if a thread was started from it, that thread in `thread`.
    pub fn message(&self, message_id: u64) -> Option<Value> {
        let st = self.inner.lock();
        st.world
            .messages
            .get(&message_id)
            .map(|m| st.world.rendered(m))
    }

    // -- threads ----------------------------------------------------------------------------------

    /// Every thread channel (started by the bot, or added by the test with
    /// [`add_channel`](Self::add_channel)), oldest first, as `GET /channels/{id}` answers them.
    /// A thread's messages are [`channel_messages`](Self::channel_messages)`(thread_id)`; a forum
    /// post's starter message is the last of them (it has the thread's id).
    pub fn threads(&self) -> Vec<Value> {
        self.inner.lock().world.threads()
    }

    /// The threads whose parent is `parent_id` (a text, announcement or forum channel), oldest
    /// first.
    pub fn threads_in(&self, parent_id: u64) -> Vec<Value> {
        let parent = json!(parent_id.to_string());
        self.threads()
            .into_iter()
            .filter(|t| t["parent_id"] == parent)
            .collect()
    }

    /// The thread of a message: the one started from it (Start Thread from Message), or the
    /// forum post it starts. Either way the thread has the message's id, as on Discord.
    pub fn thread_of_message(&self, message_id: u64) -> Option<Value> {
        let st = self.inner.lock();
        st.world.messages.get(&message_id)?;
        st.world.channel(message_id).filter(is_thread)
    }

    /// The registered commands, global (`None`) or of a guild, as the fake echoed them.
    pub fn registered_commands(&self, guild_id: Option<u64>) -> Vec<Value> {
        self.inner
            .lock()
            .world
            .commands
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The current original response of a dispatched interaction (after edits), if any.
    pub fn original_response(&self, interaction: &Value) -> Option<Value> {
        let st = self.inner.lock();
        let rec = st.world.interactions.get(interaction["token"].as_str()?)?;
        st.world.messages.get(&rec.original?).cloned()
    }

    /// The follow-up messages of a dispatched interaction, oldest first.
    pub fn followups(&self, interaction: &Value) -> Vec<Value> {
        let st = self.inner.lock();
        let Some(rec) = interaction["token"]
            .as_str()
            .and_then(|t| st.world.interactions.get(t))
        else {
            return Vec::new();
        };
        rec.followups
            .iter()
            .filter_map(|id| st.world.messages.get(id).cloned())
            .collect()
    }

    /// The modal the bot opened for a dispatched interaction (its MODAL callback's `data`:
    /// `custom_id`, `title`, `components`), if it answered with one.
    pub fn modal_response(&self, interaction: &Value) -> Option<Value> {
        let st = self.inner.lock();
        let rec = st.world.interactions.get(interaction["token"].as_str()?)?;
        rec.modal.clone()
    }

    /// The files the bot sent with its answers to a dispatched interaction: the accepted
    /// callback, its follow-ups and its edits of the original or of a follow-up, in that order
    /// of arrival (requests the fake refused are left out).
    pub fn response_files(&self, interaction: &Value) -> Vec<RecordedFile> {
        let Some(token) = interaction["token"].as_str() else {
            return Vec::new();
        };
        let callback = payloads::callback_path(interaction);
        let webhook = format!("/api/v10/webhooks/{APP_ID}/{token}");
        let edits = format!("{webhook}/messages/");
        self.requests_matching(|r| {
            r.status < 300
                && ((r.method == "POST" && (r.path == callback || r.path == webhook))
                    || (r.method == "PATCH" && r.path.starts_with(&edits)))
        })
        .into_iter()
        .flat_map(|r| r.files)
        .collect()
    }

    // -- attachments and the CDN ------------------------------------------------------------------

    /// Puts a file on the fake's CDN, as Discord does with a file a user attaches to a command,
    /// and returns its attachment object (`id`, `filename`, `size` = the bytes' length,
    /// `content_type`, `url` = `proxy_url` =
    /// `http://127.0.0.1:PORT/attachments/{channel}/{id}/{filename}`, with #general as the
    /// channel). `GET` on that URL answers the bytes; give the object to
    /// [`InteractionBuilder::resolved_attachment`](payloads::InteractionBuilder::resolved_attachment)
    /// with an [`opt_attachment`](payloads::opt_attachment).
    pub fn host_attachment(&self, filename: &str, content_type: &str, bytes: Vec<u8>) -> Value {
        let mut st = self.inner.lock();
        let channel = payloads::GENERAL_CHANNEL_ID;
        st.world
            .host(channel, filename, Some(content_type), bytes, None)
    }

    /// [`host_attachment`](Self::host_attachment) with a `size` that lies: what Discord reports
    /// is `declared_size` whatever the bytes, so a test can check that the bot refuses a file by
    /// its declared size before downloading it.
    pub fn host_attachment_with_size(
        &self,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
        declared_size: u32,
    ) -> Value {
        let mut st = self.inner.lock();
        let channel = payloads::GENERAL_CHANNEL_ID;
        let size = Some(u64::from(declared_size));
        st.world
            .host(channel, filename, Some(content_type), bytes, size)
    }

    /// How many times a file was downloaded from the fake's CDN (answered 200).
    pub fn attachment_downloads(&self) -> usize {
        self.requests_matching(|r| {
            r.method == "GET" && r.path.starts_with("/attachments/") && r.status == 200
        })
        .len()
    }

    /// The bytes behind an attachment object (one the test hosted, or one of a message the bot
    /// sent with files: see `attachments` in [`channel_messages`](Self::channel_messages),
    /// [`original_response`](Self::original_response), [`followups`](Self::followups)).
    pub fn attachment_bytes(&self, attachment: &Value) -> Option<Vec<u8>> {
        let id = snowflake(&attachment["id"])?;
        let st = self.inner.lock();
        st.world.files.get(&id).map(|f| f.bytes.clone())
    }

    // -- direct messages --------------------------------------------------------------------------

    /// Closes `user_id`'s DMs to the bot (privacy settings, or the bot blocked): from now on
    /// posting in the DM channel with them answers 403 with code 50007 "Cannot send messages to
    /// this user", as on Discord. Opening the DM channel (`POST /users/@me/channels`) still
    /// succeeds, and interaction answers (webhooks) are not affected.
    pub fn close_dms(&self, user_id: u64) {
        self.inner.lock().world.closed_dms.insert(user_id);
    }

    /// The DM channel with `user_id` (the one `POST /users/@me/channels` answers: always the same
    /// for the same user), if it has been opened or is configured (alice's is
    /// [`payloads::DM_CHANNEL_ID`]).
    pub fn dm_channel_of(&self, user_id: u64) -> Option<u64> {
        self.inner
            .lock()
            .world
            .dm_channels_of(user_id)
            .first()
            .copied()
    }

    /// The bot's messages in its DM channels with `user_id`, oldest first (posts and interaction
    /// answers alike, after edits; refused posts are not messages).
    pub fn dm_messages_to(&self, user_id: u64) -> Vec<Value> {
        let st = self.inner.lock();
        let channels = st.world.dm_channels_of(user_id);
        st.world
            .messages
            .values()
            .filter(|m| {
                snowflake(&m["channel_id"]).is_some_and(|c| channels.contains(&c))
                    && snowflake(&m["author"]["id"]) == Some(payloads::BOT_USER_ID)
            })
            .cloned()
            .collect()
    }

    // -- requests -------------------------------------------------------------------------------

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    /// The requests for which `pred` holds.
    pub fn requests_matching(
        &self,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> Vec<RecordedRequest> {
        self.inner
            .lock()
            .requests
            .iter()
            .filter(|r| pred(r))
            .cloned()
            .collect()
    }

    /// Requests no route handled (answered 404 Unknown).
    pub fn unhandled_requests(&self) -> Vec<RecordedRequest> {
        self.requests_matching(|r| r.unhandled)
    }

    /// The number of requests so far: pass it to the `*_since` waits to look only at later ones.
    pub fn mark(&self) -> usize {
        self.inner.lock().requests.len()
    }

    /// Waits for a request (any so far, or a later one) for which `pred` holds.
    ///
    /// # Panics
    /// After `timeout`, saying "`what`" never arrived and listing what did; or at once when a
    /// request body failed validation.
    pub async fn wait_for_request(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> RecordedRequest {
        self.wait_for_request_since(0, what, timeout, pred).await
    }

    /// Like [`wait_for_request`](Self::wait_for_request), among requests from index `mark` on.
    pub async fn wait_for_request_since(
        &self,
        mark: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> RecordedRequest {
        self.wait_state(what, timeout, |st| {
            st.requests.iter().skip(mark).find(|r| pred(r)).cloned()
        })
        .await
    }

    /// Waits for the bot's callback to `interaction` (`POST /interactions/{id}/{token}/callback`).
    pub async fn wait_for_callback(
        &self,
        interaction: &Value,
        timeout: Duration,
    ) -> RecordedRequest {
        let path = payloads::callback_path(interaction);
        let what = format!(
            "the callback for interaction {} (POST {path})",
            interaction["data"]["name"]
                .as_str()
                .or(interaction["data"]["custom_id"].as_str())
                .unwrap_or("?")
        );
        self.wait_for_request(&what, timeout, |r| r.method == "POST" && r.path == path)
            .await
    }

    /// Waits until every one of `interactions` has an accepted callback (for a burst of many;
    /// cheaper than one [`wait_for_callback`](Self::wait_for_callback) each).
    pub async fn wait_for_callbacks(&self, interactions: &[Value], timeout: Duration) {
        let tokens: Vec<&str> = interactions
            .iter()
            .map(|i| i["token"].as_str().expect("interaction token"))
            .collect();
        let mut next = 0;
        let what = format!("accepted callbacks for all {} interactions", tokens.len());
        self.wait_state(&what, timeout, |st| {
            while next < tokens.len()
                && st
                    .world
                    .interactions
                    .get(tokens[next])
                    .is_some_and(|r| r.answered_at.is_some())
            {
                next += 1;
            }
            (next == tokens.len()).then_some(())
        })
        .await
    }

    /// When a dispatched interaction's frame was written to the gateway socket and when its
    /// accepted callback was received (both `None` until they happen); `None` for an interaction
    /// never dispatched. For latency measurements that leave the test's own waiting out.
    pub fn interaction_timing(&self, interaction: &Value) -> Option<InteractionTiming> {
        let st = self.inner.lock();
        let rec = st.world.interactions.get(interaction["token"].as_str()?)?;
        Some(InteractionTiming {
            dispatch_sent: rec.sent_at,
            callback_received: rec.answered_at,
        })
    }

    /// Waits for a message the bot posts to a channel (`POST /channels/{id}/messages`) from
    /// index `mark` on.
    pub async fn wait_for_channel_message_since(
        &self,
        mark: usize,
        channel_id: u64,
        timeout: Duration,
    ) -> RecordedRequest {
        let path = format!("/api/v10/channels/{channel_id}/messages");
        let what = format!("a message posted to channel {channel_id} (POST {path})");
        self.wait_for_request_since(mark, &what, timeout, |r| {
            r.method == "POST" && r.path == path
        })
        .await
    }

    /// Asserts that no request from index `mark` on satisfies `pred` within `window` (e.g. "the
    /// bot does not answer another bot's DM").
    pub async fn assert_no_request_since(
        &self,
        mark: usize,
        what: &str,
        window: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) {
        tokio::time::sleep(window).await;
        let found = self.requests().into_iter().skip(mark).find(|r| pred(r));
        self.check_problems();
        if let Some(r) = found {
            panic!(
                "fake Discord: expected no {what}, but got {}\n  body: {}",
                r.describe(),
                r.body_text()
            );
        }
    }

    // -- body problems ----------------------------------------------------------------------------

    /// Every invalid request body so far (OpenAPI schema or Discord limits), described.
    pub fn body_problems(&self) -> Vec<String> {
        self.inner.lock().problems.clone()
    }

    /// Returns the problems so far and forgets them: for a test that sends an invalid body on
    /// purpose.
    pub fn take_body_problems(&self) -> Vec<String> {
        let mut st = self.inner.lock();
        st.problems_reported = 0;
        std::mem::take(&mut st.problems)
    }

    /// Panics if any request body so far was invalid. Called by every wait and on drop, so a
    /// test cannot forget it; call it at the end of a test to fail with a clear message early.
    pub fn assert_all_bodies_valid(&self) {
        let problems = self.body_problems();
        if !problems.is_empty() {
            self.inner.lock().problems_reported = problems.len();
            panic!("{}", problems_report(&problems));
        }
    }

    /// Panics on problems no earlier check has reported.
    fn check_problems(&self) {
        let new: Vec<String> = {
            let mut st = self.inner.lock();
            let new = st.problems[st.problems_reported..].to_vec();
            st.problems_reported = st.problems.len();
            new
        };
        if !new.is_empty() {
            panic!("{}", problems_report(&new));
        }
    }

    // -- waiting --------------------------------------------------------------------------------

    /// Runs `check` on the state after every change until it returns `Some`, failing fast on
    /// new body problems and with a report after `timeout`.
    async fn wait_state<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl FnMut(&mut State) -> Option<T>,
    ) -> T {
        match self.wait_until(timeout, check).await {
            Some(found) => found,
            None => panic!("{}", self.timeout_report(what, timeout)),
        }
    }

    /// Like [`wait_state`](Self::wait_state), but `None` after `timeout` instead of a panic.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.inner.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            self.check_problems();
            let found = check(&mut self.inner.lock());
            if let Some(found) = found {
                self.inner.bump();
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    fn timeout_report(&self, what: &str, timeout: Duration) -> String {
        let st = self.inner.lock();
        let mut report = format!(
            "fake Discord: timed out after {timeout:?}: {what} never arrived.\n  gateway: {:?}\n  sessions: {}\n  {} requests received:",
            st.gateway.stats(),
            st.gateway.describe_sessions(),
            st.requests.len()
        );
        let skip = st.requests.len().saturating_sub(40);
        if skip > 0 {
            report += &format!("\n    ... {skip} earlier ones");
        }
        for r in &st.requests[skip..] {
            report += &format!("\n    {}", r.describe());
        }
        report
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            return;
        }
        let st = self.inner.lock();
        let new = st.problems[st.problems_reported..].to_vec();
        drop(st);
        if !new.is_empty() {
            panic!("{}", problems_report(&new));
        }
    }
}

fn problems_report(problems: &[String]) -> String {
    format!(
        "fake Discord: {} request bodies the real Discord would reject:\n  {}",
        problems.len(),
        problems.join("\n  ")
    )
}

/// Queues one dispatch on each of the sessions in `sends` (a shard and the dispatch's data
/// serialized for it) and records it once (an interaction, so its callback is accepted; a
/// message, so it can be fetched): written to a live connection at once, or kept for the RESUME
/// replay while the session is disconnected. Returns the sequence number on the first session;
/// `None` when none of them exists. `data` is what the world records.
fn send_dispatch(
    st: &mut State,
    event: &str,
    data: &Value,
    sends: &[(Shard, &str)],
) -> Option<u64> {
    let token = (event == "INTERACTION_CREATE")
        .then(|| data["token"].as_str().unwrap_or_default().to_string());
    let gw = &mut st.gateway;
    let mut first = None;
    for &(shard, text) in sends {
        let Some(session) = gw.sessions.get_mut(&shard) else {
            continue;
        };
        let seq = session.seq + 1;
        let frame = format!(r#"{{"op":0,"s":{seq},"t":{},"d":{text}}}"#, json!(event));
        if let Some(conn) = session.conn.and_then(|id| gw.conns.get(&id)) {
            // A connection closing right now drops it; the RESUME replay delivers it then.
            let _ = conn.tx.send(Outgoing::Text(frame.clone(), token.clone()));
        }
        session.history.push((seq, frame, token.clone()));
        session.seq = seq;
        session.dispatches += 1;
        gw.stats.seq = seq;
        first.get_or_insert(seq);
    }
    let seq = first?;
    gw.stats.dispatches += 1;
    if event == "INTERACTION_CREATE" {
        st.world.interactions.insert(
            data["token"].as_str().unwrap_or_default().to_string(),
            InteractionRecord {
                id: data["id"].as_str().unwrap_or_default().to_string(),
                kind: data["type"].as_u64().unwrap_or(0),
                channel_id: snowflake(&data["channel_id"]).unwrap_or(0),
                message: data.get("message").cloned(),
                dispatched_at: Instant::now(),
                sent_at: None,
                answered_at: None,
                response_type: None,
                modal: None,
                original: None,
                followups: Vec::new(),
            },
        );
    }
    if event == "MESSAGE_CREATE" {
        if let Some(id) = snowflake(&data["id"]) {
            st.world.messages.insert(id, data.clone());
        }
        // A DM implies its channel: Discord knows the DM channel a person writes in.
        if let Some(channel_id) = snowflake(&data["channel_id"]) {
            if data["guild_id"].is_null() && st.world.channel(channel_id).is_none() {
                let dm = payloads::dm_channel(channel_id, data["author"].clone());
                st.world.channels.insert(channel_id, dm);
            }
        }
    }
    Some(seq)
}

/// Discord delivers MESSAGE_CREATE only with the intent for its kind (GUILD_MESSAGES in a server,
/// DIRECT_MESSAGES in a DM), and without MESSAGE_CONTENT a server message that does not mention
/// the bot arrives with its content, embeds, attachments and components emptied.
pub fn filter_message_by_intents(intents: u64, data: &mut Value) -> Result<(), String> {
    let in_guild = !data["guild_id"].is_null();
    let (needed, name) = if in_guild {
        (INTENT_GUILD_MESSAGES, "GUILD_MESSAGES")
    } else {
        (INTENT_DIRECT_MESSAGES, "DIRECT_MESSAGES")
    };
    if intents & needed == 0 {
        return Err(format!(
            "the session's IDENTIFY has no {name} intent (intents {intents:#x}): Discord would not deliver this message"
        ));
    }
    let mentions_bot = data["mentions"].as_array().is_some_and(|m| {
        m.iter()
            .any(|u| snowflake(&u["id"]) == Some(payloads::BOT_USER_ID))
    });
    if in_guild && intents & INTENT_MESSAGE_CONTENT == 0 && !mentions_bot {
        data["content"] = json!("");
        for key in ["embeds", "attachments", "components"] {
            data[key] = json!([]);
        }
    }
    Ok(())
}

/// Checks an application command interaction against the command the bot registered, as
/// Discord's client does before sending it.
fn check_command_options(world: &World, interaction: &Value) -> Result<(), String> {
    let name = interaction["data"]["name"].as_str().unwrap_or_default();
    let guild = snowflake(&interaction["guild_id"]);
    let find = |scope: Option<u64>| {
        world
            .commands
            .get(&scope)
            .and_then(|list| list.iter().find(|c| c["name"] == name))
    };
    let command = guild
        .and_then(|g| find(Some(g)))
        .or_else(|| find(None))
        .ok_or_else(|| {
            format!("no command /{name} is registered (globally or in this server): Discord would not send it")
        })?;
    let given = interaction["data"]["options"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let defined = command["options"].as_array().cloned().unwrap_or_default();
    check_options(&format!("/{name}"), &defined, &given)
}

fn check_options(path: &str, defined: &[Value], given: &[Value]) -> Result<(), String> {
    for option in given {
        let name = option["name"].as_str().unwrap_or_default();
        let Some(def) = defined.iter().find(|d| d["name"] == name) else {
            return Err(format!("{path} has no option {name:?}"));
        };
        let kind = def["type"].as_u64().unwrap_or(0);
        if option["type"].as_u64() != Some(kind) {
            return Err(format!(
                "{path} {name}: type {} given, the command defines type {kind}",
                option["type"]
            ));
        }
        let value = &option["value"];
        let at = format!("{path} {name}");
        match kind {
            1 | 2 => {
                let inner = option["options"].as_array().cloned().unwrap_or_default();
                let defs = def["options"].as_array().cloned().unwrap_or_default();
                check_options(&at, &defs, &inner)?;
            }
            3 => {
                let length = value.as_str().map_or(0, |v| v.chars().count()) as u64;
                if let Some(max) = def["max_length"].as_u64().filter(|&max| length > max) {
                    return Err(format!("{at}: {length} characters, max_length is {max}"));
                }
                let min = def["min_length"].as_u64().unwrap_or(0);
                if length < min.max(1) {
                    return Err(format!(
                        "{at}: {length} characters, min_length is {}",
                        min.max(1)
                    ));
                }
            }
            4 | 10 => {
                let number = value.as_f64().unwrap_or(f64::NAN);
                let below = def["min_value"].as_f64().is_some_and(|min| number < min);
                let above = def["max_value"].as_f64().is_some_and(|max| number > max);
                if below || above || number.is_nan() {
                    return Err(format!("{at}: {value} is outside the command's range"));
                }
            }
            _ => {}
        }
        if let Some(choices) = def["choices"].as_array().filter(|c| !c.is_empty()) {
            if !choices.iter().any(|c| &c["value"] == value) {
                return Err(format!("{at}: {value} is not one of the command's choices"));
            }
        }
    }
    let leaf = !given
        .iter()
        .any(|o| matches!(o["type"].as_u64(), Some(1 | 2)));
    if leaf {
        for def in defined {
            let required = def["required"].as_bool().unwrap_or(false);
            let present = given.iter().any(|o| o["name"] == def["name"]);
            if required && !present {
                return Err(format!(
                    "{path}: the required option {} is missing",
                    def["name"]
                ));
            }
        }
    }
    Ok(())
}

/// Checks that serenity turns this dispatch into a known event: serenity drops one it cannot
/// deserialize (or whose name it does not know) without telling the bot or the test. A known
/// event whose data does not parse becomes `Event::Unknown` too, so for the events the tests send
/// the data is parsed once more on its own to say which field is wrong.
pub fn check_dispatch(event: &str, data: &Value) -> Result<(), String> {
    use serenity::model::event::{
        Event, GatewayEvent, GuildCreateEvent, InteractionCreateEvent, MessageCreateEvent,
        ReadyEvent,
    };
    fn detail<T: serde::de::DeserializeOwned>(data: &Value) -> String {
        match serde_json::from_value::<T>(data.clone()) {
            Ok(_) => "serenity cannot parse it".to_string(),
            Err(e) => format!("serenity cannot parse its data: {e}"),
        }
    }
    let frame = json!({"op": 0, "s": 1, "t": event, "d": data});
    match serde_json::from_value::<GatewayEvent>(frame) {
        Ok(GatewayEvent::Dispatch(_, Event::Unknown(_))) => Err(match event {
            "INTERACTION_CREATE" => detail::<InteractionCreateEvent>(data),
            "MESSAGE_CREATE" => detail::<MessageCreateEvent>(data),
            "GUILD_CREATE" => detail::<GuildCreateEvent>(data),
            "READY" => detail::<ReadyEvent>(data),
            _ => format!("serenity does not know the event {event:?} or cannot parse its data"),
        }),
        Ok(GatewayEvent::Dispatch(..)) => Ok(()),
        Ok(other) => Err(format!("not a dispatch: {other:?}")),
        Err(e) => Err(format!("serenity cannot deserialize it: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway

async fn gateway_upgrade(
    ws: WebSocketUpgrade,
    AxumState(inner): AxumState<Arc<Inner>>,
) -> Response {
    ws.on_upgrade(move |socket| gateway_session(inner, socket))
}

async fn gateway_session(inner: Arc<Inner>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = {
        let mut st = inner.lock();
        st.gateway.stats.connections += 1;
        let id = st.gateway.stats.connections;
        let conn = Conn {
            tx: tx.clone(),
            session: None,
        };
        st.gateway.conns.insert(id, conn);
        id
    };
    inner.bump();
    let interval = inner.heartbeat_interval.as_millis() as u64;
    let hello = json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": interval}});
    // The code of the client's close frame, if it sent one.
    let mut client_close = None;
    // IDENTIFY and RESUME received while sessions are held (see `FakeDiscord::hold_sessions`).
    let mut parked: std::collections::VecDeque<String> = Default::default();
    let mut changes = inner.changes.subscribe();
    if socket
        .send(WsMessage::Text(hello.to_string()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(WsMessage::Text(text))) => {
                        // Heartbeats are answered even while a held IDENTIFY/RESUME waits.
                        if !on_gateway_message(&inner, conn_id, &tx, &text) {
                            parked.push_back(text);
                        }
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        client_close = frame.map(|f| f.code);
                        break;
                    }
                    Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                outgoing = rx.recv() => match outgoing {
                    Some(Outgoing::Text(text, token)) => {
                        if socket.send(WsMessage::Text(text)).await.is_err() {
                            break;
                        }
                        if let Some(token) = token {
                            let sent_at = Instant::now();
                            if let Some(rec) = inner.lock().world.interactions.get_mut(&token) {
                                rec.sent_at = Some(sent_at);
                            }
                        }
                    }
                    Some(Outgoing::Close(code)) => {
                        let frame = CloseFrame { code, reason: "closed by the test".into() };
                        let _ = socket.send(WsMessage::Close(Some(frame))).await;
                        break;
                    }
                    None => break,
                },
                _ = changes.changed(), if !parked.is_empty() => {
                    while parked
                        .front()
                        .is_some_and(|text| on_gateway_message(&inner, conn_id, &tx, text))
                    {
                        parked.pop_front();
                    }
                }
            }
        }
    }
    {
        let mut st = inner.lock();
        let gw = &mut st.gateway;
        // The session this connection still carried, if any.
        let carried = gw
            .conns
            .get(&conn_id)
            .and_then(|c| c.session)
            .filter(|k| gw.sessions.get(k).is_some_and(|s| s.conn == Some(conn_id)));
        gw.detach(conn_id);
        // Discord: a client closing with 1000 or 1001 ends its session (the bot goes offline;
        // no RESUME). Any other end leaves it resumable.
        if let (Some(shard), Some(1000 | 1001)) = (carried, client_close) {
            gw.sessions.remove(&shard);
        }
    }
    inner.bump();
}

/// Handles one message of a connection. `false` when it is an IDENTIFY or RESUME held by
/// [`FakeDiscord::hold_sessions`]: the caller keeps it for later.
fn on_gateway_message(
    inner: &Inner,
    conn_id: u32,
    tx: &mpsc::UnboundedSender<Outgoing>,
    text: &str,
) -> bool {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return true;
    };
    let send = |v: Value| {
        let _ = tx.send(Outgoing::Text(v.to_string(), None));
    };
    let close = |code: u16| {
        let _ = tx.send(Outgoing::Close(code));
    };
    let mut guard = inner.lock();
    let st = &mut *guard;
    let gw = &mut st.gateway;
    if gw.hold_sessions && matches!(msg["op"].as_u64(), Some(2 | 6)) {
        return false;
    }
    match msg["op"].as_u64() {
        Some(1) => {
            gw.stats.heartbeats += 1;
            if !gw.stop_heartbeat_acks {
                send(json!({"op": 11, "s": null, "t": null, "d": null}));
            }
        }
        Some(2) => {
            gw.stats.identifies += 1;
            let d = &msg["d"];
            gw.identify_payloads.push(d.clone());
            if d["token"].as_str() != Some(&format!("Bot {TOKEN}")) {
                // Discord: 4004 "Authentication failed".
                close(4004);
            } else if gw.conns.get(&conn_id).is_some_and(|c| c.session.is_some()) {
                // Discord: 4005 "Already authenticated".
                close(4005);
            } else {
                match identify_shard(d) {
                    // Discord: 4010 "Invalid shard".
                    Err(_) => close(4010),
                    Ok(shard) => {
                        let guilds: Vec<u64> = st
                            .world
                            .guilds
                            .keys()
                            .copied()
                            .filter(|&g| guild_shard(g, shard.1) == shard.0)
                            .collect();
                        let session_id = format!("fake-session-{}", gw.stats.identifies);
                        let ready_shard = d["shard"].is_array().then_some([shard.0, shard.1]);
                        let ready =
                            payloads::ready(&session_id, &inner.ws_url, &guilds, ready_shard);
                        send(json!({"op": 0, "s": 1, "t": "READY", "d": ready}));
                        let mut seq = 1;
                        for g in &guilds {
                            seq += 1;
                            let data = st.world.guilds[g].guild_create();
                            send(json!({"op": 0, "s": seq, "t": "GUILD_CREATE", "d": data}));
                        }
                        // A re-shard: sessions of another total that nobody carries are gone.
                        gw.sessions
                            .retain(|k, s| k.1 == shard.1 || s.conn.is_some());
                        let session = Session {
                            session_id,
                            conn: None,
                            seq,
                            intents: d["intents"].as_u64().unwrap_or(0),
                            history: Vec::new(),
                            guilds,
                            dispatches: 0,
                            replayed: 0,
                            resumed: 0,
                        };
                        // A new IDENTIFY on a shard replaces its session; a connection still
                        // carrying the old one stays open, unbound.
                        if let Some(old) = gw.sessions.insert(shard, session) {
                            if let Some(c) = old.conn.and_then(|id| gw.conns.get_mut(&id)) {
                                c.session = None;
                            }
                        }
                        gw.stats.seq = seq;
                        // Live unless the test closed this connection meanwhile.
                        gw.bind(conn_id, shard);
                    }
                }
            }
        }
        Some(6) => {
            gw.stats.resumes += 1;
            let wanted = msg["d"]["session_id"].as_str();
            let shard = gw
                .sessions
                .iter()
                .find(|(_, s)| wanted == Some(s.session_id.as_str()))
                .map(|(k, _)| *k);
            if let Some(shard) = shard {
                gw.stats.resumed += 1;
                // Replay what the client missed on this shard (everything after the sequence it
                // last saw), then RESUMED.
                let seen = msg["d"]["seq"].as_u64().unwrap_or(0);
                let session = gw.sessions.get_mut(&shard).expect("found above");
                let mut replayed = 0;
                for (seq, frame, token) in &session.history {
                    if *seq > seen {
                        let _ = tx.send(Outgoing::Text(frame.clone(), token.clone()));
                        replayed += 1;
                    }
                }
                session.replayed += replayed;
                session.resumed += 1;
                session.seq += 1;
                let seq = session.seq;
                send(json!({"op": 0, "s": seq, "t": "RESUMED", "d": {}}));
                gw.stats.replayed += replayed;
                gw.stats.seq = seq;
                gw.bind(conn_id, shard);
            } else {
                // Invalid session, not resumable: the bot must IDENTIFY again.
                send(json!({"op": 9, "s": null, "t": null, "d": false}));
            }
        }
        _ => {}
    }
    drop(guard);
    inner.bump();
    true
}

// ---------------------------------------------------------------------------------------------
// REST

struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
    note: Option<String>,
    unhandled: bool,
    /// Break the connection instead of answering (the status is what is recorded).
    drop_connection: bool,
    /// A raw body (content type, bytes) instead of JSON: a file from the CDN.
    raw: Option<(String, Vec<u8>)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            note: None,
            unhandled: false,
            drop_connection: false,
            raw: None,
        }
    }

    fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            headers: Vec::new(),
            note: None,
            unhandled: false,
            drop_connection: false,
            raw: None,
        }
    }

    /// A Discord-style error: `{"message": ..., "code": ...}`.
    fn error(status: u16, code: u32, message: &str) -> Self {
        Self::json(status, json!({"message": message, "code": code}))
    }

    /// A file's bytes, as the CDN answers them.
    fn file(content_type: &str, bytes: Vec<u8>) -> Self {
        let mut r = Self::no_content();
        r.status = 200;
        r.raw = Some((content_type.to_string(), bytes));
        r
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    fn unknown() -> Self {
        let mut r = Self::error(404, 0, "Unknown");
        r.unhandled = true;
        r
    }

    fn into_response(self) -> Response {
        if self.drop_connection {
            // A body that fails before its first byte: hyper aborts the connection, and the
            // client sees it reset without a complete answer.
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped by the test",
                ))
            });
            return axum::body::Body::from_stream(broken).into_response();
        }
        let status = StatusCode::from_u16(self.status).expect("valid status");
        let mut response = match (self.raw, self.body) {
            (Some((content_type, bytes)), _) => {
                (status, [(CONTENT_TYPE, content_type)], bytes).into_response()
            }
            (None, Some(body)) => (
                status,
                [(CONTENT_TYPE, "application/json".to_string())],
                body.to_string(),
            )
                .into_response(),
            (None, None) => status.into_response(),
        };
        for (name, value) in self.headers {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).expect("header value"),
            );
        }
        response
    }
}

/// The standard error for an injected status.
fn injected_error(status: u16) -> Reply {
    match status {
        400 => Reply::error(400, 50035, "Invalid Form Body"),
        401 => Reply::error(401, 0, "401: Unauthorized"),
        403 => Reply::error(403, 50013, "Missing Permissions"),
        404 => Reply::error(404, 10003, "Unknown Channel"),
        s if s >= 500 => Reply::error(s, 0, &format!("{s}: Internal Server Error")),
        s => Reply::error(s, 0, &format!("{s}: Error")),
    }
}

fn rate_limited(retry_after: Duration, global: bool) -> Reply {
    let secs = retry_after.as_secs_f64();
    let mut r = Reply::json(
        429,
        json!({"message": "You are being rate limited.", "retry_after": secs, "global": global, "code": 0}),
    );
    r.headers = vec![
        ("retry-after", format!("{}", secs.ceil() as u64)),
        ("x-ratelimit-limit", "5".into()),
        ("x-ratelimit-remaining", "0".into()),
        ("x-ratelimit-reset-after", format!("{secs:.3}")),
        ("x-ratelimit-bucket", "fake-bucket".into()),
        (
            "x-ratelimit-scope",
            if global { "global" } else { "user" }.into(),
        ),
    ];
    if global {
        r.headers.push(("x-ratelimit-global", "true".into()));
    }
    r
}

async fn rest(
    AxumState(inner): AxumState<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let received_at = Instant::now();
    let method = method.as_str().to_string();
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_owned);
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Discord answers 401 to any call with an unknown token. `GET /gateway` is exempt (it needs
    // no token, and when it fails serenity silently connects to the real gateway); a request
    // without the header (the self-test's raw HTTP) is let through. The CDN (`/attachments/`)
    // ignores the header, as Discord's does.
    let token_rejected = path != "/api/v10/gateway"
        && !path.starts_with("/attachments/")
        && authorization
            .as_deref()
            .is_some_and(|a| a != format!("Bot {TOKEN}"));
    let (body, files, mut problem) = parse_body(content_type.as_deref(), &raw);
    let mut operation = None;
    if let Some(spec) = &inner.spec {
        let has_body = body.is_some() || !raw.is_empty();
        if has_body || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            // The placeholder ids of the files uploaded with it are validated as the strings
            // Discord reads them as (see `upload_placeholders_to_strings`).
            let uploaded: Vec<u64> = files.iter().filter_map(RecordedFile::index).collect();
            let checked = body.clone().map(|mut b| {
                upload_placeholders_to_strings(&mut b, &uploaded);
                b
            });
            match spec.check(&method, &path, checked.as_ref()) {
                Ok(op) => operation = Some(op),
                Err(e) => problem = problem.or(Some(e)),
            }
        } else {
            operation = spec.operation_name(&method, &path);
        }
    }
    let mut delay = None;
    let incoming = Incoming {
        method: &method,
        path: &path,
        query: query.as_deref(),
        body: body.as_ref(),
        files: &files,
    };
    let reply = {
        let mut st = inner.lock();
        let st = &mut *st;
        if let Some(p) = attachments_problem(&st.world, &method, &path, body.as_ref(), &files) {
            problem = Some(match problem {
                Some(first) => format!("{first}\n  and {p}"),
                None => p,
            });
        }
        // Never on `GET /gateway`: when that fails serenity silently connects to the real gateway.
        let fault = st.faults.iter_mut().find(|f| {
            !token_rejected
                && !path.starts_with("/api/v10/gateway")
                && f.remaining > 0
                && (f.method == "*" || f.method.eq_ignore_ascii_case(&method))
                && path.starts_with(&f.prefix)
        });
        let fault = fault.map(|f| {
            f.remaining -= 1;
            f.kind
        });
        let reply = match fault {
            _ if token_rejected => {
                Reply::error(401, 0, "401: Unauthorized").note("not the fake's token")
            }
            Some(FaultKind::Status(status)) => {
                injected_error(status).note(format!("injected {status}"))
            }
            Some(FaultKind::RateLimited {
                retry_after,
                global,
            }) => rate_limited(retry_after, global)
                .note(format!("injected 429, retry_after {retry_after:?}")),
            Some(kind @ (FaultKind::StatusAfterHandling(_) | FaultKind::DropAfterHandling)) => {
                let handled = match discord_limits(&method, &path, body.as_ref()) {
                    Some(limit_problem) => {
                        problem = problem.or(Some(limit_problem));
                        Reply::error(400, 50035, "Invalid Form Body")
                    }
                    None => route(&inner, &mut st.world, received_at, incoming),
                };
                let handled_as = handled.status;
                match kind {
                    FaultKind::StatusAfterHandling(status) => injected_error(status)
                        .note(format!("handled ({handled_as}), then answered {status}")),
                    _ => {
                        let mut reply = Reply::error(499, 0, "connection dropped").note(format!(
                            "handled ({handled_as}), then dropped the connection"
                        ));
                        reply.drop_connection = true;
                        reply
                    }
                }
            }
            Some(FaultKind::Delay(d)) => {
                delay = Some(d);
                let limits = discord_limits(&method, &path, body.as_ref());
                match limits {
                    Some(limit_problem) => {
                        problem = problem.or(Some(limit_problem));
                        Reply::error(400, 50035, "Invalid Form Body")
                    }
                    None => route(&inner, &mut st.world, received_at, incoming),
                }
                .note(format!("delayed {d:?}"))
            }
            None => match discord_limits(&method, &path, body.as_ref()) {
                Some(limit_problem) => {
                    problem = problem.or(Some(limit_problem));
                    Reply::error(400, 50035, "Invalid Form Body").note("over a Discord limit")
                }
                None => route(&inner, &mut st.world, received_at, incoming),
            },
        };
        let index = st.requests.len();
        if let Some(p) = &problem {
            st.problems
                .push(format!("request #{index} {method} {path}: {p}"));
        }
        st.requests.push(RecordedRequest {
            index,
            method: method.clone(),
            path: path.clone(),
            query,
            body,
            files,
            authorization,
            user_agent,
            content_type,
            received_at,
            since_start: received_at - inner.started,
            status: reply.status,
            operation,
            problem,
            note: reply.note.clone(),
            unhandled: reply.unhandled,
        });
        reply
    };
    inner.bump();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    reply.into_response()
}

/// The JSON body (or a multipart request's `payload_json`), a multipart request's files, and a
/// problem if the body is not JSON or not a multipart form Discord reads.
fn parse_body(
    content_type: Option<&str>,
    raw: &[u8],
) -> (Option<Value>, Vec<RecordedFile>, Option<String>) {
    if raw.is_empty() {
        return (None, Vec::new(), None);
    }
    let ct = content_type.unwrap_or_default();
    if ct.starts_with("multipart/form-data") {
        let parts = match multipart_parts(ct, raw) {
            Ok(parts) => parts,
            Err(e) => return (None, Vec::new(), Some(format!("multipart body: {e}"))),
        };
        let mut json = None;
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for part in parts {
            if part.name == "payload_json" {
                match serde_json::from_slice(&part.bytes) {
                    Ok(v) => json = Some(v),
                    Err(e) => problems.push(format!("payload_json is not JSON ({e})")),
                }
            } else if part.filename.is_some() || part.name.starts_with("files[") {
                let file = RecordedFile {
                    field_name: part.name,
                    filename: part.filename.unwrap_or_default(),
                    content_type: part.content_type,
                    bytes: part.bytes,
                };
                if file.filename.is_empty() {
                    // Discord: "All files[n] parameters must include a valid Content-Disposition
                    // subpart header with a filename".
                    problems.push(format!("file part {} has no filename", file.field_name));
                }
                files.push(file);
            }
        }
        if json.is_none() && problems.is_empty() {
            problems.push("multipart body without a JSON payload_json part".into());
        }
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        return (json, files, problem);
    }
    match serde_json::from_slice(raw) {
        Ok(v) => (Some(v), Vec::new(), None),
        Err(e) => (
            None,
            Vec::new(),
            Some(format!("body is not JSON ({e}); content-type {ct:?}")),
        ),
    }
}

/// One part of a `multipart/form-data` body.
struct FormPart {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

/// Splits a `multipart/form-data` body into its parts (RFC 7578), on bytes: file contents are
/// kept exactly as sent.
fn multipart_parts(content_type: &str, raw: &[u8]) -> Result<Vec<FormPart>, String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("no boundary in the content type")?;
    let delimiter = format!("--{boundary}").into_bytes();
    // Every delimiter but a first one at the very start follows a CRLF.
    let next_delimiter = [b"\r\n".as_slice(), &delimiter].concat();
    let mut at = if raw.starts_with(&delimiter) {
        0
    } else {
        find_bytes(raw, &next_delimiter, 0).ok_or("no boundary line")? + 2
    };
    let mut parts = Vec::new();
    loop {
        let after = at + delimiter.len();
        if raw[after..].starts_with(b"--") {
            return Ok(parts);
        }
        let start = after
            + raw[after..]
                .strip_prefix(b"\r\n")
                .map(|_| 2)
                .ok_or("a boundary line not followed by CRLF")?;
        let end = find_bytes(raw, &next_delimiter, start).ok_or("no closing boundary")?;
        let part = &raw[start..end];
        let (head, bytes) = match find_bytes(part, b"\r\n\r\n", 0) {
            Some(h) => (&part[..h], &part[h + 4..]),
            None if part.starts_with(b"\r\n") => (&part[..0], &part[2..]),
            None => return Err("a part without a blank line after its headers".into()),
        };
        let head = String::from_utf8_lossy(head);
        let mut name = None;
        let mut filename = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                for (k, v) in disposition_params(value) {
                    match k.as_str() {
                        "name" => name = Some(v),
                        "name*" => name = Some(ext_value(&v)),
                        "filename" => filename = Some(v),
                        "filename*" => filename = Some(ext_value(&v)),
                        _ => {}
                    }
                }
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_string());
            }
        }
        parts.push(FormPart {
            name: name.ok_or("a part without a name in its Content-Disposition")?,
            filename,
            content_type: part_type,
            bytes: bytes.to_vec(),
        });
        at = end + 2;
    }
}

fn find_bytes(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The parameters of a `Content-Disposition: form-data; name="a"; filename="b"` value, quoted
/// strings unescaped.
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = value.chars().peekable();
    // The disposition type itself.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return params;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut v = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            v = chars.by_ref().take_while(|&c| c != ';').collect();
            v = v.trim().to_string();
        }
        params.push((key, v));
    }
}

/// An RFC 8187 extended value (`utf-8''files%5B0%5D`), decoded.
fn ext_value(v: &str) -> String {
    let encoded = v.splitn(3, '\'').nth(2).unwrap_or(v);
    percent_decode(encoded)
}

/// Discord's message limits that the OpenAPI schema does not carry (it allows 4000 characters of
/// content for users with Nitro; bots get 2000), `allowed_mentions` that Discord refuses (`parse`
/// with `"users"` and a `users` list, or `"roles"` and a `roles` list), and a thread's name (1 to
/// 100 characters; Discord answers 400). A forum post's limits are its starter `message`'s.
fn discord_limits(method: &str, path: &str, body: Option<&Value>) -> Option<String> {
    let body = body?;
    let rel = path.strip_prefix("/api/v10").unwrap_or(path);
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut problems = Vec::new();
    let thread = method == "POST" && rel.starts_with("/channels/") && rel.ends_with("/threads");
    if thread && !(1..=100).contains(&chars(&body["name"])) {
        problems.push(format!(
            "thread name is {} characters (1 to 100)",
            chars(&body["name"])
        ));
    }
    let message = if rel.starts_with("/interactions/") {
        &body["data"]
    } else if thread {
        &body["message"]
    } else if (rel.starts_with("/channels/") && rel.contains("/messages"))
        || rel.starts_with("/webhooks/")
    {
        body
    } else {
        return None;
    };
    if !matches!(method, "POST" | "PATCH") || !message.is_object() {
        return (!problems.is_empty())
            .then(|| format!("over Discord's limits: {}", problems.join("; ")));
    }
    let allowed = &message["allowed_mentions"];
    for (kind, list) in [("users", "users"), ("roles", "roles")] {
        let parsed = allowed["parse"]
            .as_array()
            .is_some_and(|p| p.iter().any(|v| v == kind));
        if parsed && allowed[list].as_array().is_some_and(|l| !l.is_empty()) {
            problems.push(format!(
                "allowed_mentions: parse {kind:?} and a {list} list are mutually exclusive"
            ));
        }
    }
    let content = chars(&message["content"]);
    if content > 2000 {
        problems.push(format!("content is {content} characters (max 2000)"));
    }
    if let Some(embeds) = message["embeds"].as_array() {
        if embeds.len() > 10 {
            problems.push(format!("{} embeds (max 10)", embeds.len()));
        }
        let mut total = 0;
        for (i, e) in embeds.iter().enumerate() {
            let fields = e["fields"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if fields.len() > 25 {
                problems.push(format!("embeds[{i}] has {} fields (max 25)", fields.len()));
            }
            let mut texts = vec![
                ("title", &e["title"], 256),
                ("description", &e["description"], 4096),
                ("footer.text", &e["footer"]["text"], 2048),
                ("author.name", &e["author"]["name"], 256),
            ];
            for f in fields {
                texts.push(("fields[].name", &f["name"], 256));
                texts.push(("fields[].value", &f["value"], 1024));
            }
            for (what, v, max) in texts {
                let n = chars(v);
                total += n;
                if n > max {
                    problems.push(format!("embeds[{i}].{what} is {n} characters (max {max})"));
                }
            }
        }
        if total > 6000 {
            problems.push(format!("embeds total {total} characters (max 6000)"));
        }
    }
    (!problems.is_empty()).then(|| format!("over Discord's limits: {}", problems.join("; ")))
}

/// What [`route`] needs of a request.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    body: Option<&'a Value>,
    files: &'a [RecordedFile],
}

fn route(inner: &Inner, world: &mut World, received_at: Instant, request: Incoming) -> Reply {
    let Incoming {
        method,
        path,
        query,
        body,
        files,
    } = request;
    if let Some(cdn) = path.strip_prefix("/attachments/") {
        return cdn_route(world, method, cdn);
    }
    let Some(rel) = path.strip_prefix("/api/v10/") else {
        return Reply::unknown();
    };
    let segments: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
    let empty = json!({});
    let body_or_empty = body.unwrap_or(&empty);
    let app = APP_ID.to_string();
    match (method, segments.as_slice()) {
        ("GET", ["gateway"]) => Reply::ok(json!({"url": inner.ws_url})),
        ("GET", ["gateway", "bot"]) => Reply::ok(json!({
            "url": inner.ws_url,
            "shards": inner.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        })),
        ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]) => {
            Reply::ok(payloads::application())
        }
        ("GET", ["users", "@me"]) => Reply::ok(payloads::bot_user()),
        ("GET", ["users", "@me", "guilds"]) => Reply::ok(Value::Array(
            world
                .guilds
                .values()
                .map(|g| json!({"id": g.id.to_string(), "name": g.name, "icon": null, "owner": false, "permissions": "0", "features": []}))
                .collect(),
        )),
        ("GET", ["users", user_id]) => {
            let known = [payloads::alice(), payloads::ada(), payloads::bot_user()];
            match known.into_iter().find(|u| u["id"] == *user_id) {
                Some(u) => Reply::ok(u),
                None => Reply::error(404, 10013, "Unknown User"),
            }
        }
        ("POST", ["users", "@me", "channels"]) => {
            // Opening a DM: the same channel every time for the same user (alice's is known from
            // the start); a new one the first time. Closed DMs still open (see `close_dms`).
            let Some(recipient) = snowflake(&body_or_empty["recipient_id"]) else {
                return Reply::error(400, 50035, "Invalid Form Body").note("no recipient_id");
            };
            if let Some(&id) = world.dm_channels_of(recipient).first() {
                return Reply::ok(world.channel(id).expect("a DM channel"));
            }
            let known = [payloads::alice(), payloads::ada(), payloads::user(payloads::OWNER_ID, "owner", false)];
            let user = known
                .into_iter()
                .find(|u| snowflake(&u["id"]) == Some(recipient))
                .unwrap_or_else(|| payloads::user(recipient, "someone", false));
            let id = payloads::next_snowflake();
            let channel = payloads::dm_channel(id, user);
            world.channels.insert(id, channel.clone());
            Reply::ok(channel)
        }

        // Application commands.
        (_, ["applications", a, ..]) if *a != app.as_str() => {
            Reply::error(404, 10002, "Unknown Application")
        }
        (_, ["applications", _, "commands", ..]) => {
            commands_route(world, None, method, &segments[3..], body)
        }
        (_, ["applications", _, "guilds", guild, "commands", ..]) => match guild.parse::<u64>() {
            Ok(guild_id) => commands_route(world, Some(guild_id), method, &segments[5..], body),
            Err(_) => Reply::error(404, 10004, "Unknown Guild"),
        },

        // Interactions and their webhooks.
        ("POST", ["interactions", interaction_id, token, "callback"]) => {
            interaction_callback(inner, world, received_at, interaction_id, token, body_or_empty, files)
        }
        (_, ["webhooks", a, token, rest @ ..]) if *a == app.as_str() => {
            webhook_route(world, method, token, rest, body_or_empty, files)
        }

        // Channels and messages.
        (_, ["channels", channel, rest @ ..]) => {
            let Ok(channel_id) = channel.parse::<u64>() else {
                return Reply::error(404, 10003, "Unknown Channel");
            };
            channel_route(world, method, channel_id, rest, query, body_or_empty, files)
        }

        // Add / Remove Guild Member Role.
        ("PUT" | "DELETE", ["guilds", guild, "members", user, "roles", role]) => {
            member_role_route(world, method == "PUT", guild, user, role)
        }

        // Guilds.
        ("GET", ["guilds", guild, rest @ ..]) => {
            let Some(g) = guild.parse::<u64>().ok().and_then(|id| world.guilds.get(&id)) else {
                return Reply::error(404, 10004, "Unknown Guild");
            };
            match rest {
                [] => Reply::ok(g.rest_guild()),
                ["roles"] => Reply::ok(json!(g.roles)),
                ["channels"] => Reply::ok(json!(g.channels)),
                ["members", user] => match user.parse().ok().and_then(|u| g.member(u)) {
                    Some(m) => Reply::ok(m),
                    None => Reply::error(404, 10007, "Unknown Member"),
                },
                ["threads", "active"] => {
                    // List Active Guild Threads: the guild's threads not archived, newest first,
                    // and the bot's membership of those it is in (the ones it started).
                    let mut threads: Vec<Value> = world
                        .threads()
                        .into_iter()
                        .filter(|t| {
                            snowflake(&t["guild_id"]) == Some(g.id)
                                && t["thread_metadata"]["archived"] != true
                        })
                        .collect();
                    threads.reverse();
                    let members: Vec<Value> = threads
                        .iter()
                        .filter(|t| snowflake(&t["owner_id"]) == Some(payloads::BOT_USER_ID))
                        .map(|t| {
                            json!({
                                "id": t["id"],
                                "user_id": payloads::BOT_USER_ID.to_string(),
                                "join_timestamp": snowflake(&t["id"]).map(payloads::snowflake_timestamp),
                                "flags": 0,
                            })
                        })
                        .collect();
                    // `has_more` is not in Discord's documentation of this route, but the spec's
                    // ThreadsResponse requires it.
                    Reply::ok(json!({"threads": threads, "members": members, "has_more": false}))
                }
                _ => Reply::unknown(),
            }
        }
        _ => Reply::unknown(),
    }
}

fn commands_route(
    world: &mut World,
    guild: Option<u64>,
    method: &str,
    rest: &[&str],
    body: Option<&Value>,
) -> Reply {
    let registered = world.commands.entry(guild).or_default();
    match (method, rest) {
        ("GET", []) => Reply::ok(json!(registered)),
        ("PUT", []) => {
            let Some(list) = body.and_then(Value::as_array) else {
                return Reply::error(400, 50035, "Invalid Form Body")
                    .note("PUT commands needs an array");
            };
            let old = std::mem::take(registered);
            *registered = list
                .iter()
                .map(|c| {
                    let id = old
                        .iter()
                        .find(|o| o["name"] == c["name"])
                        .map(|o| o["id"].clone());
                    registered_command(c, guild, id)
                })
                .collect();
            Reply::ok(json!(registered))
        }
        ("POST", []) => {
            let Some(c) = body.filter(|b| b.is_object()) else {
                return Reply::error(400, 50035, "Invalid Form Body");
            };
            let existing = registered.iter().position(|o| o["name"] == c["name"]);
            let command =
                registered_command(c, guild, existing.map(|i| registered[i]["id"].clone()));
            match existing {
                Some(i) => registered[i] = command.clone(),
                None => registered.push(command.clone()),
            }
            Reply::json(if existing.is_some() { 200 } else { 201 }, command)
        }
        (_, [command_id]) => {
            let Some(i) = registered.iter().position(|o| o["id"] == *command_id) else {
                return Reply::error(404, 10063, "Unknown application command");
            };
            match method {
                "GET" => Reply::ok(registered[i].clone()),
                "DELETE" => {
                    registered.remove(i);
                    Reply::no_content()
                }
                "PATCH" => {
                    let mut c = registered[i].clone();
                    if let (Some(c), Some(patch)) =
                        (c.as_object_mut(), body.and_then(Value::as_object))
                    {
                        c.extend(patch.clone());
                    }
                    registered[i] =
                        registered_command(&c, guild, Some(registered[i]["id"].clone()));
                    Reply::ok(registered[i].clone())
                }
                _ => Reply::unknown(),
            }
        }
        _ => Reply::unknown(),
    }
}

/// The command object Discord answers a registration with.
fn registered_command(request: &Value, guild: Option<u64>, id: Option<Value>) -> Value {
    let mut c = request.clone();
    let o = c.as_object_mut().expect("command object");
    o.insert(
        "id".into(),
        id.unwrap_or_else(|| json!(payloads::next_snowflake().to_string())),
    );
    o.insert("application_id".into(), json!(APP_ID.to_string()));
    o.insert(
        "version".into(),
        json!(payloads::next_snowflake().to_string()),
    );
    o.entry("type").or_insert(json!(1));
    o.entry("description").or_insert(json!(""));
    if let Some(g) = guild {
        o.insert("guild_id".into(), json!(g.to_string()));
    }
    // Responses carry permissions as strings.
    if let Some(p) = o.get("default_member_permissions").and_then(Value::as_u64) {
        o.insert("default_member_permissions".into(), json!(p.to_string()));
    }
    c
}

fn interaction_callback(
    inner: &Inner,
    world: &mut World,
    received_at: Instant,
    interaction_id: &str,
    token: &str,
    body: &Value,
    files: &[RecordedFile],
) -> Reply {
    let unknown = Reply::error(404, 10062, "Unknown interaction");
    let Some(rec) = world
        .interactions
        .get(token)
        .filter(|r| r.id == interaction_id)
    else {
        return unknown.note("no INTERACTION_CREATE with this id and token was dispatched");
    };
    let age = rec.dispatched_at.elapsed();
    if let Some(deadline) = inner.interaction_deadline {
        if age > deadline && rec.response_type.is_none() {
            return unknown.note(format!(
                "first callback {age:.2?} after the dispatch, past Discord's {deadline:?}"
            ));
        }
    }
    if rec.response_type.is_some() {
        return Reply::error(400, 40060, "Interaction has already been acknowledged.")
            .note("second callback");
    }
    let (kind, channel_id, component_message) = (rec.kind, rec.channel_id, rec.message.clone());
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let response_type = body["type"].as_u64().unwrap_or(0);
    // Interaction types: 2 command, 3 component, 4 autocomplete, 5 modal submit.
    let original = match response_type {
        1 => None,
        4 if kind != 4 => Some(world.bot_message(channel_id, &data, true, files)),
        5 if kind != 4 => {
            let flags = data["flags"].as_u64().unwrap_or(0) | LOADING;
            let loading = json!({"content": "", "flags": flags});
            Some(world.bot_message(channel_id, &loading, true, &[]))
        }
        // The message of the component (for a modal submit: of the component that opened the
        // modal), as the fake has it now (after earlier edits), else as dispatched.
        6 | 7 if kind == 3 || (kind == 5 && component_message.is_some()) => {
            let dispatched = component_message.unwrap_or(json!({}));
            let mut message = snowflake(&dispatched["id"])
                .and_then(|id| world.messages.get(&id).cloned())
                .unwrap_or(dispatched);
            if response_type == 7 {
                apply_message_edit(&mut message, &data);
                world.apply_attachments(&mut message, &data, files, false);
                message["edited_timestamp"] = json!(payloads::now_timestamp());
            }
            if let Some(id) = snowflake(&message["id"]) {
                world.messages.insert(id, message.clone());
            }
            Some(message)
        }
        // Discord accepts DEFERRED_UPDATE_MESSAGE for any modal submit: it closes the modal and
        // nothing is shown (discord-api-docs#5486).
        6 if kind == 5 => None,
        // The fake's call: with no message there is nothing to update, so the bot's reply would
        // be lost; refused so that a test notices.
        7 if kind == 5 => {
            return Reply::error(400, 50035, "Invalid Form Body").note(
                "UPDATE_MESSAGE updates the message of the component that opened the modal, \
                 and this modal was not opened from one (the interaction has no message)",
            );
        }
        8 if kind == 4 => None,
        9 if kind == 5 => {
            return Reply::error(400, 50035, "Invalid Form Body")
                .note("callback type 9 (MODAL) cannot answer a MODAL_SUBMIT: Discord refuses it");
        }
        9 if matches!(kind, 2 | 3) => None,
        other => {
            return Reply::error(400, 50035, "Invalid Form Body").note(format!(
                "callback type {other} is not valid for interaction type {kind}"
            ));
        }
    };
    let rec = world.interactions.get_mut(token).expect("looked up above");
    if response_type == 9 {
        rec.modal = Some(data);
    }
    rec.response_type = Some(response_type);
    rec.answered_at = Some(received_at);
    rec.original = original.and_then(|m| snowflake(&m["id"]));
    Reply::no_content()
}

fn webhook_route(
    world: &mut World,
    method: &str,
    token: &str,
    rest: &[&str],
    body: &Value,
    files: &[RecordedFile],
) -> Reply {
    let Some(rec) = world.interactions.get(token) else {
        return Reply::error(404, 10015, "Unknown Webhook").note("no interaction with this token");
    };
    if rec.response_type.is_none() {
        return Reply::error(404, 10015, "Unknown Webhook")
            .note("the interaction was not acknowledged yet");
    }
    let (original, followups, channel_id) = (rec.original, rec.followups.clone(), rec.channel_id);
    match (method, rest) {
        ("POST", []) => {
            let message = world.bot_message(channel_id, body, true, files);
            let id = snowflake(&message["id"]).expect("id");
            world
                .interactions
                .get_mut(token)
                .expect("exists")
                .followups
                .push(id);
            Reply::ok(message)
        }
        (_, ["messages", which]) => {
            let id = if *which == "@original" {
                original
            } else {
                which.parse().ok().filter(|id| followups.contains(id))
            };
            let Some(id) = id.filter(|id| world.messages.contains_key(id)) else {
                return Reply::error(404, 10008, "Unknown Message");
            };
            match method {
                "GET" => Reply::ok(world.messages[&id].clone()),
                "PATCH" => {
                    let mut message = world.messages[&id].clone();
                    let flags = message["flags"].as_u64().unwrap_or(0);
                    message["flags"] = json!(flags & !LOADING);
                    apply_message_edit(&mut message, body);
                    world.apply_attachments(&mut message, body, files, false);
                    message["edited_timestamp"] = json!(payloads::now_timestamp());
                    world.messages.insert(id, message.clone());
                    Reply::ok(message)
                }
                "DELETE" => {
                    world.messages.remove(&id);
                    Reply::no_content()
                }
                _ => Reply::unknown(),
            }
        }
        _ => Reply::unknown(),
    }
}

fn channel_route(
    world: &mut World,
    method: &str,
    channel_id: u64,
    rest: &[&str],
    query: Option<&str>,
    body: &Value,
    files: &[RecordedFile],
) -> Reply {
    let unknown_channel = Reply::error(404, 10003, "Unknown Channel");
    if world.deleted_channels.contains(&channel_id) {
        return unknown_channel.note("channel deleted by the test");
    }
    let Some(channel) = world.channel(channel_id) else {
        return unknown_channel.note("no such channel in the fake's world");
    };
    // In a server channel the bot's permissions there decide, as on Discord; a DM has none.
    let permissions = world.bot_permissions(&channel);
    let has = |bit: u64| permissions.is_none_or(|p| p & bit != 0);
    if !has(payloads::VIEW_CHANNEL) {
        return Reply::error(403, 50001, "Missing Access")
            .note("the bot lacks View Channel in this channel");
    }
    let kind = channel["type"].as_u64();
    match (method, rest) {
        ("GET", []) => Reply::ok(channel),
        ("POST", ["typing"]) => Reply::no_content(),
        ("POST", ["messages"]) if matches!(kind, Some(15 | 16)) => {
            Reply::error(400, 50008, "Cannot send messages in a non-text channel")
                .note("a forum or media channel takes posts (POST /channels/{id}/threads)")
        }
        ("POST", ["messages"]) => {
            if is_thread(&channel) && !has(payloads::SEND_MESSAGES_IN_THREADS) {
                return Reply::error(403, 50013, "Missing Permissions")
                    .note("the bot lacks Send Messages in Threads in this thread's channel");
            }
            if !is_thread(&channel) && !has(payloads::SEND_MESSAGES) {
                return Reply::error(403, 50013, "Missing Permissions")
                    .note("the bot lacks Send Messages in this channel");
            }
            let embeds = body["embeds"].as_array().is_some_and(|e| !e.is_empty());
            if embeds && !has(payloads::EMBED_LINKS) {
                return Reply::error(403, 50013, "Missing Permissions")
                    .note("the bot lacks Embed Links in this channel and sent embeds");
            }
            let recipient =
                snowflake(&channel["recipients"][0]["id"]).filter(|_| channel["type"] == 1);
            if recipient.is_some_and(|r| world.closed_dms.contains(&r)) {
                return Reply::error(403, 50007, "Cannot send messages to this user")
                    .note("the user's DMs are closed (close_dms)");
            }
            if let Some(first) = world.same_nonce(channel_id, body) {
                return Reply::ok(first)
                    .note("repeated nonce with enforce_nonce: the first message, nothing created");
            }
            Reply::ok(world.bot_message(channel_id, body, false, files))
        }
        ("GET", ["messages"]) => {
            // Discord: without Read Message History the list is simply empty.
            if !has(payloads::READ_MESSAGE_HISTORY) {
                return Reply::ok(json!([])).note("no Read Message History: nothing listed");
            }
            let limit = query_param(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50usize)
                .clamp(1, 100);
            let before = query_param(query, "before").and_then(|b| b.parse::<u64>().ok());
            let after = query_param(query, "after").and_then(|a| a.parse::<u64>().ok());
            let mut list: Vec<Value> = world
                .history(channel_id)
                .into_iter()
                .filter(|m| {
                    let id = snowflake(&m["id"]).unwrap_or(0);
                    before.is_none_or(|b| id < b) && after.is_none_or(|a| id > a)
                })
                .collect();
            // Like Discord: a page `after` an id holds the messages right after it (the oldest
            // ones); otherwise the newest. Either way newest first.
            if after.is_some() && before.is_none() {
                list = list.split_off(list.len().saturating_sub(limit));
            } else {
                list.truncate(limit);
            }
            Reply::ok(Value::Array(list))
        }
        ("POST", ["messages", message, "threads"]) => {
            start_thread_from_message(world, &channel, &has, message, body)
        }
        ("POST", ["threads"]) if matches!(kind, Some(15 | 16)) => {
            start_forum_post(world, &channel, &has, body, files)
        }
        ("POST", ["threads"]) => start_thread_without_message(world, &channel, &has, body),
        (_, ["messages", message]) => {
            let Some(id) = message.parse::<u64>().ok().filter(|id| {
                world
                    .messages
                    .get(id)
                    .is_some_and(|m| snowflake(&m["channel_id"]) == Some(channel_id))
            }) else {
                return Reply::error(404, 10008, "Unknown Message");
            };
            let by_bot =
                snowflake(&world.messages[&id]["author"]["id"]) == Some(payloads::BOT_USER_ID);
            match method {
                "GET" if !has(payloads::READ_MESSAGE_HISTORY) => {
                    Reply::error(403, 50013, "Missing Permissions")
                }
                "GET" => Reply::ok(world.rendered(&world.messages[&id])),
                "PATCH" if !by_bot => {
                    Reply::error(403, 50005, "Cannot edit a message authored by another user")
                }
                "PATCH" => {
                    let mut m = world.messages[&id].clone();
                    let had_thread = m["flags"].as_u64().unwrap_or(0) & HAS_THREAD;
                    apply_message_edit(&mut m, body);
                    // An edit's `flags` cannot take HAS_THREAD away (Discord keeps it).
                    m["flags"] = json!(m["flags"].as_u64().unwrap_or(0) | had_thread);
                    world.apply_attachments(&mut m, body, files, false);
                    m["edited_timestamp"] = json!(payloads::now_timestamp());
                    world.messages.insert(id, m.clone());
                    Reply::ok(world.rendered(&m))
                }
                "DELETE" => {
                    world.messages.remove(&id);
                    world.count_in_thread(channel_id, id, -1);
                    Reply::no_content()
                }
                _ => Reply::unknown(),
            }
        }
        _ => Reply::unknown(),
    }
}

/// `POST /channels/{channel_id}/messages/{message_id}/threads` (Start Thread from Message), as
/// Discord answers it: only in a text (thread type 11) or announcement (10) channel (else 400
/// 50024), with Create Public Threads (else 403 50013), from a message of that channel (else 404
/// 10008), once per message (else 400 160004). The thread has the message's id; the message is
/// flagged HAS_THREAD and carries the thread from then on. 201 with the thread channel.
fn start_thread_from_message(
    world: &mut World,
    channel: &Value,
    has: &dyn Fn(u64) -> bool,
    message: &str,
    body: &Value,
) -> Reply {
    let kind = match channel["type"].as_u64() {
        Some(0) => 11,
        Some(5) => 10,
        _ => {
            return Reply::error(400, 50024, "Cannot execute action on this channel type")
                .note("threads start from messages of text and announcement channels only")
        }
    };
    if !has(payloads::CREATE_PUBLIC_THREADS) {
        return Reply::error(403, 50013, "Missing Permissions")
            .note("the bot lacks Create Public Threads in this channel");
    }
    let channel_id = snowflake(&channel["id"]);
    let Some(message_id) = message.parse::<u64>().ok().filter(|id| {
        world.messages.get(id).is_some_and(|m| {
            snowflake(&m["channel_id"]) == channel_id
                && m["flags"].as_u64().unwrap_or(0) & EPHEMERAL == 0
        })
    }) else {
        return Reply::error(404, 10008, "Unknown Message");
    };
    if world.channels.contains_key(&message_id) {
        return Reply::error(
            400,
            160004,
            "A thread has already been created for this message",
        );
    }
    let thread = world.new_thread(message_id, channel, kind, body);
    let m = world.messages.get_mut(&message_id).expect("the message");
    m["flags"] = json!(m["flags"].as_u64().unwrap_or(0) | HAS_THREAD);
    Reply::json(201, thread)
}

/// `POST /channels/{channel_id}/threads` on a forum or media channel (Start Thread in Forum or
/// Media Channel), as Discord answers it: with Send Messages (else 403 50013; Embed Links for
/// embeds), a starter `message` that is not empty (else 400 50006), `applied_tags` among the
/// forum's `available_tags` (else 400 50035) and at least one when the forum has REQUIRE_TAG
/// (else 400 40067). The thread (type 11) and its starter message, stored in the thread, share
/// one id. 201 with the thread channel and the starter in `message`.
fn start_forum_post(
    world: &mut World,
    forum: &Value,
    has: &dyn Fn(u64) -> bool,
    body: &Value,
    files: &[RecordedFile],
) -> Reply {
    if !has(payloads::SEND_MESSAGES) {
        return Reply::error(403, 50013, "Missing Permissions")
            .note("the bot lacks Send Messages in this forum");
    }
    let message = &body["message"];
    if !message.is_object() {
        return Reply::error(400, 50035, "Invalid Form Body")
            .note("a forum post needs its starter `message`");
    }
    let non_empty = |key: &str| match &message[key] {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    let empty = !["content", "embeds", "sticker_ids", "components"]
        .iter()
        .any(|key| non_empty(key))
        && files.is_empty();
    if empty {
        return Reply::error(400, 50006, "Cannot send an empty message");
    }
    if non_empty("embeds") && !has(payloads::EMBED_LINKS) {
        return Reply::error(403, 50013, "Missing Permissions")
            .note("the bot lacks Embed Links in this forum and sent embeds");
    }
    let available: Vec<u64> = forum["available_tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| snowflake(&t["id"]))
        .collect();
    let applied: Vec<Option<u64>> = body["applied_tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(snowflake)
        .collect();
    if applied
        .iter()
        .any(|t| !t.is_some_and(|t| available.contains(&t)))
    {
        return Reply::error(400, 50035, "Invalid Form Body")
            .note("applied_tags names a tag the forum does not have");
    }
    if applied.is_empty() && forum["flags"].as_u64().unwrap_or(0) & REQUIRE_TAG != 0 {
        return Reply::error(
            400,
            40067,
            "A tag is required to create a forum post in this channel",
        );
    }
    let thread_id = payloads::next_snowflake();
    world.new_thread(thread_id, forum, 11, body);
    let starter = world.bot_message_with_id(thread_id, thread_id, message, false, files);
    let mut answer = world.channel(thread_id).expect("the new thread");
    answer["message"] = starter;
    Reply::json(201, answer)
}

/// `POST /channels/{channel_id}/threads` on a text or announcement channel (Start Thread
/// without Message), kept minimal: `type` 11 (public, Create Public Threads) or 12 (private,
/// Create Private Threads; the default Discord documents) in a text channel, 10 in an
/// announcement channel; anything else 400. 201 with the thread channel, which has no messages.
fn start_thread_without_message(
    world: &mut World,
    channel: &Value,
    has: &dyn Fn(u64) -> bool,
    body: &Value,
) -> Reply {
    let requested = body["type"].as_u64().unwrap_or(12);
    let (kind, needs) = match (channel["type"].as_u64(), requested) {
        (Some(0), 11) => (11, payloads::CREATE_PUBLIC_THREADS),
        (Some(0), 12) => (12, payloads::CREATE_PRIVATE_THREADS),
        (Some(5), 10) => (10, payloads::CREATE_PUBLIC_THREADS),
        (Some(0 | 5), _) => {
            return Reply::error(400, 50035, "Invalid Form Body")
                .note("thread type does not fit the channel (text: 11 or 12; announcement: 10)")
        }
        _ => {
            return Reply::error(400, 50024, "Cannot execute action on this channel type")
                .note("threads without a message: text and announcement channels only")
        }
    };
    if !has(needs) {
        return Reply::error(403, 50013, "Missing Permissions")
            .note("the bot lacks the permission to create this type of thread");
    }
    let thread = world.new_thread(payloads::next_snowflake(), channel, kind, body);
    Reply::json(201, thread)
}

/// The fake's CDN: `GET /attachments/{channel}/{id}/{filename}` answers a hosted file's bytes
/// (HEAD its headers); anything else 404.
fn cdn_route(world: &World, method: &str, rest: &str) -> Reply {
    let not_found = Reply::error(404, 0, "404: Not Found");
    let [channel, id, filename] = rest.split('/').collect::<Vec<_>>()[..] else {
        return not_found.note("not /attachments/{channel}/{id}/{filename}");
    };
    let file = id
        .parse::<u64>()
        .ok()
        .and_then(|id| world.files.get(&id))
        .filter(|f| channel.parse() == Ok(f.channel_id) && percent_decode(filename) == f.filename);
    match (method, file) {
        ("GET" | "HEAD", Some(f)) => Reply::file(
            f.content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
            f.bytes.clone(),
        ),
        (_, None) => not_found.note("no such file on the fake's CDN"),
        _ => Reply::error(405, 0, "405: Method Not Allowed"),
    }
}

/// Why the `attachments` of a message body do not match the files uploaded with it, if they do
/// not. Discord's rule: each `files[n]` part needs an `attachments` entry with `id` n (its
/// placeholder), and each entry's id names an uploaded `files[n]`, or (editing) an attachment
/// that exists. Serenity sends exactly that.
fn attachments_problem(
    world: &World,
    method: &str,
    path: &str,
    body: Option<&Value>,
    files: &[RecordedFile],
) -> Option<String> {
    let rel = path.strip_prefix("/api/v10").unwrap_or(path);
    let callback = rel.starts_with("/interactions/");
    let message_route = callback
        || rel.starts_with("/webhooks/")
        || (rel.starts_with("/channels/") && rel.contains("/messages"));
    if !message_route || !matches!(method, "POST" | "PATCH") {
        return None;
    }
    let body = body?;
    let message = if callback { &body["data"] } else { body };
    let entries = message["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if files.is_empty() && entries.is_empty() {
        return None;
    }
    // UPDATE_MESSAGE (type 7) edits a message through a POST.
    let editing = method == "PATCH" || (callback && body["type"] == 7);
    let mut problems = Vec::new();
    let mut uploaded: Vec<u64> = Vec::new();
    for file in files {
        match file.index() {
            Some(n) if uploaded.contains(&n) => {
                problems.push(format!("two file parts named {}", file.field_name))
            }
            Some(n) => uploaded.push(n),
            None => problems.push(format!(
                "file part {:?}: Discord wants files[n]",
                file.field_name
            )),
        }
    }
    let mut listed = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(id) = snowflake(&entry["id"]) else {
            problems.push(format!("attachments[{i}] has no id"));
            continue;
        };
        listed.push(id);
        let exists = editing && world.attachment_exists(id);
        if !uploaded.contains(&id) && !exists {
            problems.push(format!(
                "attachments[{i}].id {id} names no uploaded files[{id}] part{}",
                if editing {
                    " and no existing attachment"
                } else {
                    ""
                }
            ));
        }
    }
    for file in files {
        if let Some(n) = file.index().filter(|n| !listed.contains(n)) {
            problems.push(format!(
                "{} ({:?}) has no attachments entry with id {n}",
                file.field_name, file.filename
            ));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "attachments do not match the uploaded files: {}",
            problems.join("; ")
        )
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a URL path segment).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Discord's permission algorithm for one member in one channel: the @everyone role and the
/// member's roles, Administrator, then the channel's overwrites (@everyone, the member's roles
/// together, the member), each as deny-then-allow.
/// `PUT` / `DELETE /guilds/{guild}/members/{user}/roles/{role}` (Add / Remove Guild Member Role),
/// as Discord answers them: 404 for an unknown guild (10004), member (10007) or role (10011);
/// 403 50013 unless the bot has Manage Roles in the guild and its highest role is above the role
/// (the owner and Administrator aside from the permission, never from the hierarchy); else 204,
/// the member's roles changed (adding a role they have, or removing one they lack, changes nothing).
fn member_role_route(world: &mut World, add: bool, guild: &str, user: &str, role: &str) -> Reply {
    let Some(g) = guild
        .parse::<u64>()
        .ok()
        .and_then(|id| world.guilds.get_mut(&id))
    else {
        return Reply::error(404, 10004, "Unknown Guild");
    };
    let (Some(user_id), Some(role_id)) = (user.parse::<u64>().ok(), role.parse::<u64>().ok())
    else {
        return Reply::error(404, 10011, "Unknown Role");
    };
    let position = |role: u64| {
        g.roles
            .iter()
            .find(|r| snowflake(&r["id"]) == Some(role))
            .map(|r| r["position"].as_u64().unwrap_or(0))
    };
    let Some(target) = position(role_id) else {
        return Reply::error(404, 10011, "Unknown Role");
    };
    if g.member(user_id).is_none() {
        return Reply::error(404, 10007, "Unknown Member");
    }
    let guild_level = permissions_in(g, &json!({}), payloads::BOT_USER_ID);
    let bot_top = g
        .member(payloads::BOT_USER_ID)
        .and_then(|m| m["roles"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(snowflake)
        .filter_map(position)
        .max()
        .unwrap_or(0);
    if guild_level & payloads::MANAGE_ROLES == 0 || bot_top <= target {
        return Reply::error(403, 50013, "Missing Permissions")
            .note("Manage Roles and a higher role are needed to give a role");
    }
    let Some(member) = g
        .members
        .iter_mut()
        .find(|m| snowflake(&m["user"]["id"]) == Some(user_id))
    else {
        return Reply::error(404, 10007, "Unknown Member");
    };
    let mut roles: Vec<u64> = member["roles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(snowflake)
        .filter(|&r| r != role_id)
        .collect();
    if add {
        roles.push(role_id);
    }
    member["roles"] = json!(roles.iter().map(|r| r.to_string()).collect::<Vec<_>>());
    Reply::no_content()
}

fn permissions_in(guild: &TestGuild, channel: &Value, user_id: u64) -> u64 {
    const ALL: u64 = u64::MAX;
    if guild.owner_id == user_id {
        return ALL;
    }
    let member = guild.member(user_id);
    let member_roles: Vec<u64> = member
        .as_ref()
        .and_then(|m| m["roles"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(snowflake)
        .collect();
    let role_permissions = |role_id: u64| {
        guild
            .roles
            .iter()
            .find(|r| snowflake(&r["id"]) == Some(role_id))
            .and_then(|r| r["permissions"].as_str()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut permissions = role_permissions(guild.id);
    for &role in &member_roles {
        permissions |= role_permissions(role);
    }
    if permissions & payloads::ADMINISTRATOR != 0 {
        return ALL;
    }
    let overwrites = channel["permission_overwrites"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bits = |o: &Value, key: &str| {
        o[key]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let target = |o: &Value| {
        (
            snowflake(&o["id"]).unwrap_or(0),
            o["type"].as_u64().unwrap_or(0),
        )
    };
    if let Some(everyone) = overwrites.iter().find(|o| target(o) == (guild.id, 0)) {
        permissions = (permissions & !bits(everyone, "deny")) | bits(everyone, "allow");
    }
    let (mut allow, mut deny) = (0, 0);
    for o in overwrites.iter().filter(|o| {
        let (id, kind) = target(o);
        kind == 0 && id != guild.id && member_roles.contains(&id)
    }) {
        allow |= bits(o, "allow");
        deny |= bits(o, "deny");
    }
    permissions = (permissions & !deny) | allow;
    if let Some(own) = overwrites.iter().find(|o| target(o) == (user_id, 1)) {
        permissions = (permissions & !bits(own, "deny")) | bits(own, "allow");
    }
    permissions
}

/// Copies the message fields of a create/edit body onto a message object.
fn apply_message_edit(message: &mut Value, body: &Value) {
    for key in ["content", "components", "flags"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            message[key] = v.clone();
        }
    }
    if let Some(embeds) = body.get("embeds").and_then(Value::as_array) {
        let embeds: Vec<Value> = embeds
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(o) = e.as_object_mut() {
                    o.entry("type").or_insert(json!("rich"));
                }
                e
            })
            .collect();
        message["embeds"] = Value::Array(embeds);
    }
}

/// `/channels/1` and `/api/v10/channels/1` both mean `/api/v10/channels/1`; the CDN's
/// `/attachments/...` stays as it is.
fn full_path(path: &str) -> String {
    if path.starts_with("/api/") || path.starts_with("/attachments/") {
        path.to_string()
    } else {
        format!("/api/v10{path}")
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A snowflake written as a JSON string (or number).
fn snowflake(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}
