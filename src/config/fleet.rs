//! The configured endpoints, indexed by id and by what they receive.
//!
//! Routing an event asks which enabled endpoints subscribe to its type and
//! admit its tenant (SPEC section 4). With thousands of endpoints that must
//! not look at every one of them: the index is built once per config. An
//! event of a tenant looks only at that tenant's endpoints (a customer has
//! a few); the endpoints for every tenant (`"*"`) and those without one are
//! indexed by event name (each pattern expanded over the catalog), since
//! either group can be large. So an event's routing costs what its
//! tenant's endpoints and the endpoints that get it cost, not the fleet.
//!
//! Endpoints are shared (`Arc`) with the workers that deliver to them, so
//! a fleet is held once in memory.

use std::collections::HashMap;
use std::sync::Arc;

use super::endpoint::Endpoint;
use crate::catalog::Catalog;
use crate::tenant::Audience;

/// For each event name, the endpoints that get it, as positions in the
/// fleet's list (ascending: the config's order).
type ByEvent = HashMap<String, Vec<usize>>;

#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// In the config's order.
    endpoints: Vec<Arc<Endpoint>>,
    by_id: HashMap<String, usize>,
    /// Positions in `endpoints`, sorted by id.
    sorted: Vec<usize>,
    /// Enabled endpoints with `tenant = "acme"`, by tenant, as positions
    /// in `endpoints` (ascending).
    by_tenant: HashMap<String, Vec<usize>>,
    /// Enabled endpoints with `tenant = "*"`.
    everyone: ByEvent,
    /// Enabled endpoints without a tenant.
    untenanted: ByEvent,
}

impl Fleet {
    /// Indexes `endpoints`, whose ids are unique, for events of `catalog`.
    pub fn new(endpoints: Vec<Endpoint>, catalog: &Catalog) -> Fleet {
        let mut fleet = Fleet {
            by_id: endpoints
                .iter()
                .enumerate()
                .map(|(index, endpoint)| (endpoint.id.clone(), index))
                .collect(),
            ..Fleet::default()
        };
        for (index, endpoint) in endpoints.iter().enumerate().filter(|(_, endpoint)| endpoint.enabled) {
            let routes = match &endpoint.audience {
                Audience::Untenanted => &mut fleet.untenanted,
                Audience::Everyone => &mut fleet.everyone,
                Audience::Tenant(id) => {
                    fleet.by_tenant.entry(id.clone()).or_default().push(index);
                    continue;
                }
            };
            for name in catalog.names() {
                if endpoint.events.iter().any(|pattern| pattern.matches(name)) {
                    routes.entry(name.clone()).or_default().push(index);
                }
            }
        }
        fleet.sorted = (0..endpoints.len()).collect();
        fleet.sorted.sort_by(|&a, &b| endpoints[a].id.cmp(&endpoints[b].id));
        fleet.endpoints = endpoints.into_iter().map(Arc::new).collect();
        fleet
    }

    /// The endpoints sorted by id, from the first whose id sorts after
    /// `cursor` (all of them without one).
    pub fn sorted_after(&self, cursor: Option<&str>) -> impl Iterator<Item = &Endpoint> {
        let start = cursor.map_or(0, |cursor| {
            self.sorted
                .partition_point(|&index| self.endpoints[index].id.as_str() <= cursor)
        });
        self.sorted[start..].iter().map(|&index| &*self.endpoints[index])
    }

    /// The ids of the enabled endpoints that get a delivery of `event` of
    /// `tenant`, in the config's order.
    pub fn routed(&self, event: &str, tenant: Option<&str>) -> Vec<String> {
        let tenant_subscribed: Vec<usize>;
        let own: &[usize] = match tenant {
            Some(tenant) => {
                let candidates = self.by_tenant.get(tenant).map_or(&[][..], Vec::as_slice);
                tenant_subscribed = candidates
                    .iter()
                    .copied()
                    .filter(|&index| {
                        self.endpoints[index]
                            .events
                            .iter()
                            .any(|pattern| pattern.matches(event))
                    })
                    .collect();
                &tenant_subscribed
            }
            None => self.untenanted.get(event).map_or(&[][..], Vec::as_slice),
        };
        let everyone = self.everyone.get(event).map_or(&[][..], Vec::as_slice);
        merge_ascending(own, everyone)
            .map(|index| self.endpoints[index].id.clone())
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Endpoint>> {
        self.by_id.get(id).map(|&index| &self.endpoints[index])
    }

    /// The endpoints in the config's order, shared.
    pub fn iter(&self) -> std::slice::Iter<'_, Arc<Endpoint>> {
        self.endpoints.iter()
    }
}

/// Two ascending lists without common items, merged in order.
fn merge_ascending<'a>(mut a: &'a [usize], mut b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    std::iter::from_fn(move || {
        let take_a = match (a.first(), b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut a } else { &mut b };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some(*first)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::catalog::EventPattern;
    use crate::config::Secret;

    const EVENTS: [&str; 4] = [
        "enrollment.created",
        "enrollment.completed",
        "payment.completed",
        "course.published",
    ];
    const PATTERNS: [&str; 5] = [
        "*",
        "enrollment.*",
        "payment.completed",
        "course.published",
        "payment.*",
    ];
    const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

    fn catalog() -> Catalog {
        Catalog::new(&EVENTS.map(str::to_owned)).unwrap()
    }

    fn endpoint(n: usize, audience: Audience, patterns: &[&str], enabled: bool) -> Endpoint {
        let catalog = catalog();
        Endpoint {
            id: format!("e{n}"),
            url: "http://127.0.0.1:9/".parse().unwrap(),
            events: patterns
                .iter()
                .map(|pattern| EventPattern::parse(pattern, &catalog).unwrap())
                .collect(),
            audience,
            secret: Secret::new("s"),
            enabled,
            rate_limit: None,
            ordered: false,
            headers: Vec::new(),
            standard_webhooks: false,
            previous_secrets: Vec::new(),
        }
    }

    fn audience() -> impl Strategy<Value = Audience> {
        prop_oneof![
            Just(Audience::Untenanted),
            Just(Audience::Everyone),
            (0..TENANTS.len()).prop_map(|n| Audience::Tenant(TENANTS[n].to_owned())),
        ]
    }

    fn tenant() -> impl Strategy<Value = Option<&'static str>> {
        proptest::option::of((0..TENANTS.len()).prop_map(|n| TENANTS[n]))
    }

    proptest! {
        /// For any endpoints and events, the index routes exactly as the
        /// rule read endpoint by endpoint: never to another tenant's
        /// endpoint, never to a disabled or unsubscribed one.
        #[test]
        fn routes_as_the_rule_says(
            specs in proptest::collection::vec(
                (audience(), proptest::collection::vec(0..PATTERNS.len(), 1..3), any::<bool>()),
                0..24,
            ),
            events in proptest::collection::vec((0..EVENTS.len(), tenant()), 1..16),
        ) {
            let endpoints: Vec<Endpoint> = specs
                .iter()
                .enumerate()
                .map(|(n, (audience, patterns, enabled))| {
                    let patterns: Vec<&str> = patterns.iter().map(|&p| PATTERNS[p]).collect();
                    endpoint(n, audience.clone(), &patterns, *enabled)
                })
                .collect();
            let fleet = Fleet::new(endpoints.clone(), &catalog());
            for (event, tenant) in events {
                let event = EVENTS[event];
                let routed = fleet.routed(event, tenant);
                let expected: Vec<String> = endpoints
                    .iter()
                    .filter(|endpoint| endpoint.subscribes_to(event, tenant))
                    .map(|endpoint| endpoint.id.clone())
                    .collect();
                prop_assert_eq!(&routed, &expected);
                for id in &routed {
                    match &fleet.get(id).unwrap().audience {
                        Audience::Tenant(own) => prop_assert_eq!(Some(own.as_str()), tenant),
                        Audience::Untenanted => prop_assert_eq!(tenant, None),
                        Audience::Everyone => {}
                    }
                }
            }
        }
    }

    #[test]
    fn star_and_untenanted_endpoints() {
        let fleet = Fleet::new(
            vec![
                endpoint(0, Audience::Tenant("acme".into()), &["*"], true),
                endpoint(1, Audience::Everyone, &["enrollment.*"], true),
                endpoint(2, Audience::Untenanted, &["*"], true),
                endpoint(3, Audience::Tenant("globex".into()), &["*"], true),
            ],
            &catalog(),
        );
        assert_eq!(fleet.routed("enrollment.created", Some("acme")), ["e0", "e1"]);
        assert_eq!(fleet.routed("enrollment.created", None), ["e1", "e2"]);
        assert_eq!(fleet.routed("payment.completed", Some("globex")), ["e3"]);
        assert!(fleet.routed("payment.completed", Some("umbrella")).is_empty());
        assert_eq!(fleet.get("e2").map(|endpoint| endpoint.id.as_str()), Some("e2"));
    }
}
