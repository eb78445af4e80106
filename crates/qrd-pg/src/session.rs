//! A session with one server: the maintenance connection plus a small pool per database, all with the
//! same credentials, for commands that work across the four Qlik databases.

use std::collections::HashMap;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::connect::{ConnectError, ConnectErrorKind, ConnectOpts, Connector, Target};

/// Connections per database: the checks of one database run one after another, but several databases
/// can be worked on concurrently.
const POOL_SIZE: usize = 2;

pub struct Session {
    connector: Connector,
    main: Client,
    pools: Mutex<HashMap<String, Pool>>,
}

impl Session {
    /// Connects to the maintenance database (`-d`, default `postgres`).
    pub async fn open(opts: &ConnectOpts) -> Result<Self, ConnectError> {
        let mut connector = Connector::new(opts)?;
        let dbname = connector.target().dbname.clone();
        let main = connector.connect(&dbname).await?;
        Ok(Self { connector, main, pools: Mutex::new(HashMap::new()) })
    }

    /// How this session connects; [`Connector::as_role`] reuses the route for another role.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    pub fn target(&self) -> &Target {
        self.connector.target()
    }

    /// The maintenance connection.
    pub fn client(&self) -> &Client {
        &self.main
    }

    /// A pooled connection to `dbname`.
    pub async fn db(&self, dbname: &str) -> Result<Object, ConnectError> {
        let pool = {
            let mut pools = self.pools.lock().await;
            pools
                .entry(dbname.to_owned())
                .or_insert_with(|| {
                    let mgr = Manager::from_config(
                        self.connector.config(dbname),
                        self.connector.tls(),
                        ManagerConfig { recycling_method: RecyclingMethod::Fast },
                    );
                    Pool::builder(mgr).max_size(POOL_SIZE).build().expect("no runtime-dependent options are set")
                })
                .clone()
        };
        // The pool's own start-up has no deadline: bound it like every other connection.
        let got = tokio::time::timeout(self.connector.connect_timeout(), pool.get())
            .await
            .map_err(|_| self.connector.timeout_error(dbname))?;
        got.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(pg) => ConnectError::from_pg(self.target(), dbname, &pg),
            other => ConnectError {
                target: self.target().clone(),
                dbname: dbname.to_owned(),
                kind: ConnectErrorKind::Other,
                reason: other.to_string(),
            },
        })
    }
}
