//! The route file (TOML) a team keeps in git: `[[route]]` tables with `[[route.arm]]` and an
//! optional `[route.canary]`. Read whole or refused with the file, line and column.

use milc_api::gateway::RouteSpec;
use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    route: Vec<RouteSpec>,
}

/// The routes of a route file; `file` names it in errors.
pub fn parse_routes(text: &str, file: &str) -> Result<Vec<RouteSpec>, Error> {
    let parsed: RoutesFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                let col = s.start - text[..s.start].rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        Error::invalid(format!("{file}{at}"), e.message().to_owned())
    })?;
    Ok(parsed.route)
}

/// Routes as a route file.
pub fn routes_toml(specs: &[RouteSpec]) -> String {
    toml::to_string(&RoutesFile {
        route: specs.to_vec(),
    })
    .expect("routes serialize as TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[route]]
model = "support-summarizer"
sticky = "header:x-user-id"

[[route.arm]]
name = "stable"
endpoint = "Local simulator"
prompt = "support:production"
weight = 90

[[route.arm]]
name = "canary"
endpoint = "Local simulator"
prompt = "support:candidate"
weight = 10

[route.canary]
baseline = "stable"
candidate = "canary"
on_fail = "rollback"
on_pass = "promote"

[route.canary.guardrails]
max_error_rate_increase = 0.02
"#;

    #[test]
    fn the_documented_file_reads_and_writes_back_the_same_routes() {
        let routes = parse_routes(FILE, "routes.toml").unwrap();
        assert_eq!(routes.len(), 1);
        let r = &routes[0];
        assert_eq!(r.arms[1].weight, 10.0);
        assert_eq!(r.arms[1].prompt.as_deref(), Some("support:candidate"));
        let c = r.canary.as_ref().unwrap();
        assert_eq!(c.guardrails.max_error_rate_increase, 0.02);
        assert_eq!(c.guardrails.max_p95_latency_increase, 0.25);
        let again = parse_routes(&routes_toml(&routes), "export").unwrap();
        assert_eq!(again, routes);
    }

    #[test]
    fn a_mistake_names_the_file_line_and_column() {
        let bad = FILE.replace("weight = 10", "wieght = 10");
        let e = parse_routes(&bad, "routes.toml").unwrap_err().to_string();
        assert!(e.starts_with("routes.toml:"), "{e}");
        assert!(e.contains("wieght"), "{e}");
        let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
        assert_eq!(bad.lines().nth(line - 1).unwrap().trim(), "wieght = 10");
    }
}
