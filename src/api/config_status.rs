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
    pub restart_needed: bool,
}

impl ConfigStatus {
    pub fn loaded_now() -> ConfigStatus {
        ConfigStatus {
            state: std::sync::RwLock::new(ConfigState {
                loaded_at_ms: crate::clock::now_ms(),
                last_reload_error: None,
                restart_needed: false,
            }),
        }
    }

    pub fn get(&self) -> ConfigState {
        self.state.read().expect("config status lock").clone()
    }
}
