//! `qrd standby status`: what replication looks like from the server reached — on a primary, each standby
//! (state, sync state, lag in bytes and seconds) and each slot (active, WAL held); on a standby, its WAL
//! receiver, replay lag and timeline. `qrd check` reads the same report.

use qrd_pg::Session;
use qrd_pg::inventory::QueryError;
use qrd_pg::sql_template;
use qrd_pg::template::Template;

const ROLE_OF_SERVER: Template = sql_template!("replica/role_of_server.sql");
const REPLICATION: Template = sql_template!("replica/replication.sql");
const SLOTS_STATUS: Template = sql_template!("replica/slots_status.sql");
pub(crate) const RECEIVER: Template = sql_template!("replica/receiver.sql");

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Status {
    Primary { timeline: Option<i32>, standbys: Vec<StandbyLink>, slots: Vec<Slot> },
    Standby { receiver: Receiver },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StandbyLink {
    pub name: String,
    pub address: Option<String>,
    pub state: String,
    pub sync_state: String,
    pub lag_bytes: Option<i64>,
    pub lag_seconds: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Slot {
    pub name: String,
    pub active: bool,
    pub retained_bytes: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Receiver {
    /// `streaming`, `catchup`, … or `None` when no WAL receiver runs.
    pub status: Option<String>,
    pub sender: Option<String>,
    pub timeline: Option<i32>,
    pub replay_lag_bytes: Option<i64>,
    /// Seconds since the last replayed transaction committed on the primary (grows on an idle primary too).
    pub replay_age_seconds: Option<f64>,
}

/// A failed query of template `t` on `session`'s database, as the error names it.
pub(crate) fn query_err(t: &Template, session: &Session) -> impl Fn(tokio_postgres::Error) -> QueryError {
    let (name, db) = (t.name, session.target().dbname.clone());
    move |e| QueryError::query(name, &db, &e)
}

/// Whether the server is a standby (in recovery), and on a primary the timeline of the WAL it writes.
pub(crate) async fn role_of(session: &Session) -> Result<(bool, Option<i32>), QueryError> {
    let row =
        session.client().query_one(ROLE_OF_SERVER.text, &[]).await.map_err(query_err(&ROLE_OF_SERVER, session))?;
    Ok((row.get("standby"), row.get("timeline")))
}

/// Reads the replication status of the server `session` reaches.
pub async fn status(session: &Session) -> Result<Status, QueryError> {
    let c = session.client();
    let (standby, timeline) = role_of(session).await?;
    if standby {
        let r = c.query_one(RECEIVER.text, &[]).await.map_err(query_err(&RECEIVER, session))?;
        let host: Option<String> = r.get("sender_host");
        let port: Option<i32> = r.get("sender_port");
        return Ok(Status::Standby {
            receiver: Receiver {
                status: r.get("status"),
                sender: host.map(|h| match port {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                }),
                timeline: r.get("timeline"),
                replay_lag_bytes: r.get("replay_lag_bytes"),
                replay_age_seconds: r.get("replay_age_seconds"),
            },
        });
    }
    let standbys = c
        .query(REPLICATION.text, &[])
        .await
        .map_err(query_err(&REPLICATION, session))?
        .iter()
        .map(|r| StandbyLink {
            name: r.get("name"),
            address: r.get("address"),
            state: r.get("state"),
            sync_state: r.get("sync_state"),
            lag_bytes: r.get("lag_bytes"),
            lag_seconds: r.get("lag_seconds"),
        })
        .collect();
    let slots = c
        .query(SLOTS_STATUS.text, &[])
        .await
        .map_err(query_err(&SLOTS_STATUS, session))?
        .iter()
        .map(|r| Slot { name: r.get("name"), active: r.get("active"), retained_bytes: r.get("retained_bytes") })
        .collect();
    Ok(Status::Primary { timeline, standbys, slots })
}
