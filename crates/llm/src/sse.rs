//! Incremental Server-Sent Events parser (the WHATWG event-stream grammar): lines end in CR, LF or
//! CRLF — also when a CRLF pair is split between two network chunks —, lines starting with `:`
//! are comments, `field: value` strips one space, several `data:` lines join with `\n`, a blank
//! line dispatches the event. Bytes are buffered until a line is complete, so a UTF-8 character
//! split between chunks decodes correctly.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` for the default "message" type.
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// The previous byte was a CR, so an LF right after it ends no new line.
    after_cr: bool,
    started: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of bytes and appends every event it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        if !self.started && !rest.is_empty() {
            self.started = true;
            rest = rest.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(rest);
        }
        for &b in rest {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    self.end_line(out);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    /// The stream ended. A last event that was not followed by a blank line is still delivered:
    /// servers that close right after `data: [DONE]` are common, and dropping it helps no one.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = std::mem::take(&mut self.line);
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` steer browser reconnection, which a completion stream never uses.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            p.feed(&input[last..c], &mut out);
            last = c;
        }
        p.finish(&mut out);
        out
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    const STREAM: &str = ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: ping\ndata:first\ndata: second\n\n: comment\rdata: é😀\r\rdata: [DONE]\n\n";

    #[test]
    fn whole_stream_parses_with_mixed_line_endings_comments_and_multiline_data() {
        let events = parse_in_pieces(STREAM.as_bytes(), &[]);
        assert_eq!(
            data(&events),
            ["{\"a\":1}", "first\nsecond", "é😀", "[DONE]"]
        );
        assert_eq!(events[1].event.as_deref(), Some("ping"));
        assert_eq!(events[0].event, None);
    }

    #[test]
    fn splitting_the_stream_anywhere_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        let whole = parse_in_pieces(bytes, &[]);
        for i in 0..=bytes.len() {
            assert_eq!(parse_in_pieces(bytes, &[i]), whole, "cut at {i}");
            for j in i..=bytes.len() {
                assert_eq!(parse_in_pieces(bytes, &[i, j]), whole, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte_crlf_split_does_not_make_blank_lines() {
        // A CR at the end of one chunk and its LF at the start of the next is one line end:
        // if it were two, "data: a" and "data: b" would become two events.
        let input = b"data: a\r\ndata: b\r\n\r\n";
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(data(&parse_in_pieces(input, &cuts)), ["a\nb"]);
    }

    #[test]
    fn error_event_mid_stream_is_delivered_as_data() {
        let input = b"data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n";
        let events = parse_in_pieces(input, &[5, 30]);
        assert_eq!(events.len(), 2);
        assert!(events[1].data.contains("\"error\""));
    }

    #[test]
    fn field_rules_follow_the_spec() {
        // No space after the colon, exactly one space stripped, a field with no colon, a BOM.
        let input = "\u{feff}data:x\n\ndata:  two spaces\n\ndata\n\nevent: only\n\n";
        let events = parse_in_pieces(input.as_bytes(), &[]);
        assert_eq!(data(&events), ["x", " two spaces", ""]);
    }

    #[test]
    fn a_last_event_without_a_blank_line_is_still_delivered() {
        assert_eq!(data(&parse_in_pieces(b"data: [DONE]", &[])), ["[DONE]"]);
    }
}
