//! When the config in force was loaded, and how the last reload went: what
//! `GET /v1/config` reports.

/// When the config in force was loaded, and how the last reload went.
#[derive(Debug)]
pub struct ConfigStatus {
    state: std::sync::RwLock<ConfigState>,
}

#[derive(Debug, Clone)]
pub struct ConfigState {
    pub loaded_at_ms: u64,
    pub last_reload_error: Option<String>,
    /// A reload changed something only a restart applies.
    pub restart_needed: bool,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

impl ConfigStatus {
    pub fn loaded_now() -> ConfigStatus {
        ConfigStatus {
            state: std::sync::RwLock::new(ConfigState {
                loaded_at_ms: crate::clock::now_ms(),
                last_reload_error: None,
                restart_needed: false,
                reloads_ok: 0,
                reloads_failed: 0,
            }),
        }
    }

    pub fn get(&self) -> ConfigState {
        self.state.read().expect("config status lock").clone()
    }

    /// A new config is in force.
    pub fn reloaded(&self, restart_needed: bool) {
        let mut state = self.state.write().expect("config status lock");
        state.loaded_at_ms = crate::clock::now_ms();
        state.last_reload_error = None;
        state.restart_needed |= restart_needed;
        state.reloads_ok += 1;
    }

    /// A new config was refused; the old one stays in force.
    pub fn refused(&self, error: String) {
        let mut state = self.state.write().expect("config status lock");
        state.last_reload_error = Some(error);
        state.reloads_failed += 1;
    }
}
