//! Fifty support tickets and the one-line summary a support lead would write for each. A ticket
//! opens with the sentence that states the problem, then says what surrounds it; the summary is
//! that problem in the queue's words.

const PRODUCTS: [&str; 10] = [
    "Billing Portal",
    "Mobile App",
    "Data Export service",
    "Reports Dashboard",
    "Login Service",
    "Admin Console",
    "Invoice API",
    "Team Calendar",
    "File Sync client",
    "Search page",
];

const MONTHS: [&str; 5] = ["January", "March", "May", "August", "October"];

/// (problem sentence, reference summary) with `{p}` the product and `{m}` a month.
const PROBLEMS: [(&str, &str); 5] = [
    (
        "Since this morning the {p} shows an error 500 whenever we open the main screen.",
        "The {p} shows an error 500 when opening the main screen.",
    ),
    (
        "I cannot log in to the {p} after resetting my password yesterday.",
        "The customer cannot log in to the {p} after a password reset.",
    ),
    (
        "The {p} charged our company card twice for the {m} invoice.",
        "The {p} charged the company card twice for the {m} invoice.",
    ),
    (
        "Exports from the {p} are missing every row created after {m} 3.",
        "Exports from the {p} miss every row created after {m} 3.",
    ),
    (
        "The {p} has been very slow for our whole team for two days.",
        "The {p} has been slow for the whole team for two days.",
    ),
];

const CONTEXT: [&str; 5] = [
    "We are on the Team plan with 40 seats.",
    "Our account manager is Dana Whitfield.",
    "This started right after the latest update.",
    "Nothing in our settings changed recently.",
    "We use it from Chrome and Firefox on Windows.",
];

const CLOSING: [&str; 4] = [
    "Our finance team reviews this every Friday.",
    "Thanks for looking into it.",
    "I can share screenshots if that helps.",
    "Kind regards, Sam.",
];

/// The tickets, each with its reference summary.
pub fn tickets() -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(50);
    for (i, product) in PRODUCTS.iter().enumerate() {
        for (j, (problem, summary)) in PROBLEMS.iter().enumerate() {
            let k = i * PROBLEMS.len() + j;
            let fill = |s: &str| {
                s.replace("{p}", product)
                    .replace("{m}", MONTHS[(i + j) % MONTHS.len()])
            };
            let ticket = format!(
                "{} {} {}",
                fill(problem),
                CONTEXT[(k + i) % CONTEXT.len()],
                CLOSING[k % CLOSING.len()]
            );
            out.push((ticket, fill(summary)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn fifty_distinct_tickets_each_with_a_summary() {
        let t = super::tickets();
        assert_eq!(t.len(), 50);
        let mut seen: Vec<&String> = t.iter().map(|(x, _)| x).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 50);
        assert!(t.iter().all(|(x, s)| x.len() > s.len() && !s.contains('{')));
    }
}
