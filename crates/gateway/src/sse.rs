//! Server-sent events as raw bytes: the upstream's stream is cut at event boundaries (a blank
//! line after CR, LF or CRLF line ends) so each event can be passed on byte for byte, read for
//! what the gateway needs (content, usage, errors, the end), or left out.

/// Splits a byte stream into whole events, each with its terminating blank line.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Vec<u8>> {
        let b = &self.buf;
        let mut line_start = true;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\r' | b'\n' => {
                    let len = if b[i] == b'\r' {
                        match b.get(i + 1) {
                            Some(b'\n') => 2,
                            Some(_) => 1,
                            // A CR at the end may be the first half of a CRLF: wait.
                            None => return None,
                        }
                    } else {
                        1
                    };
                    if line_start {
                        return Some(self.buf.drain(..i + len).collect());
                    }
                    line_start = true;
                    i += len;
                }
                _ => {
                    line_start = false;
                    i += 1;
                }
            }
        }
        None
    }

    /// True when no part of an event is waiting.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The `data` of an event (several `data:` lines joined with `\n`); `None` for an event with
/// none (comments, keep-alives). A byte-order mark before the stream's first event is not part
/// of its first field's name (the event is still passed on as it came).
pub fn data(event: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        let Some(v) = line.strip_prefix("data") else {
            continue;
        };
        let v = match v.strip_prefix(':') {
            Some(v) => v.strip_prefix(' ').unwrap_or(v),
            None if v.is_empty() => "",
            None => continue,
        };
        match &mut out {
            Some(s) => {
                s.push('\n');
                s.push_str(v);
            }
            None => out = Some(v.to_owned()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_any_line_end_and_keep_their_bytes() {
        let mut s = Splitter::default();
        s.feed(b": keep-alive\n\ndata: {\"a\":1}\r\n\r\ndata: x\rdata: y\r\rdata: z");
        assert_eq!(s.next_event().unwrap(), b": keep-alive\n\n");
        assert_eq!(s.next_event().unwrap(), b"data: {\"a\":1}\r\n\r\n");
        let e = s.next_event().unwrap();
        assert_eq!(data(&e).as_deref(), Some("x\ny"));
        assert!(s.next_event().is_none());
        assert!(!s.is_empty());
    }

    #[test]
    fn a_stream_that_starts_with_a_byte_order_mark_is_read_from_its_first_event() {
        let mut s = Splitter::default();
        s.feed("\u{feff}data: {\"a\": 1}\n\ndata: [DONE]\n\n".as_bytes());
        let first = s.next_event().unwrap();
        assert!(
            first.starts_with("\u{feff}".as_bytes()),
            "passed on as it came"
        );
        assert_eq!(data(&first).as_deref(), Some("{\"a\": 1}"));
        assert_eq!(data(&s.next_event().unwrap()).as_deref(), Some("[DONE]"));
    }

    #[test]
    fn a_split_crlf_waits_for_its_second_half() {
        let mut s = Splitter::default();
        s.feed(b"data: [DONE]\r\n\r");
        assert!(s.next_event().is_none());
        s.feed(b"\n");
        let e = s.next_event().unwrap();
        assert_eq!(data(&e).as_deref(), Some("[DONE]"));
        assert!(s.is_empty());
    }

    #[test]
    fn comments_have_no_data_and_one_space_is_stripped() {
        assert_eq!(data(b": ping\n\n"), None);
        assert_eq!(data(b"data:  two\n\n").as_deref(), Some(" two"));
        assert_eq!(data(b"data:x\n\n").as_deref(), Some("x"));
    }
}
