//! The HTML of the Camus pages sfubox renders itself: the room page that loads the Camus
//! client bundle, the password form of a protected room, and `/public`. Plain strings, no
//! template engine; every value from configuration is HTML-escaped.

use std::fmt::Write as _;

use super::hub::PublicRoom;

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0, shrink-to-fit=no\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n<title>{}</title>\n\
         <link rel=\"stylesheet\" href=\"/static/css/app.css\">\n\
         <link rel=\"stylesheet\" href=\"/static/css/icons.css\">\n</head>\n",
        escape(title)
    )
}

/// The room page: an empty `react-root` and the client bundle (`script` is its path under
/// `/static/`, e.g. `dist/chat.js`), as Camus's `chatroom.html`. The client opens
/// `<page path>/ws` itself.
pub fn client_page(room_name: &str, script: &str) -> String {
    let mut page = head(&format!("Camus | {room_name}"));
    let _ = write!(
        page,
        "<body>\n<div id=\"react-root\" class=\"react-root\">\n</div>\n\
         <script src=\"/static/{}\"></script>\n</body>\n</html>\n",
        escape(script)
    );
    page
}

/// The password form of a protected room; it posts `password` back to the page itself.
pub fn password_page(room_name: &str, wrong: bool) -> String {
    let mut page = head("Camus | Join a room");
    let flash = if wrong {
        "<div class=\"alert alert-danger\" role=\"alert\">Invalid password</div>\n"
    } else {
        ""
    };
    let _ = write!(
        page,
        "<body>\n<div class=\"container content\">\n{flash}\
         <div class=\"dialog\" id=\"join-room-dialog\">\n<h5>Join {}</h5>\n\
         <form method=\"post\" role=\"form\">\n<div class=\"input-line\">\n\
         <label for=\"password\">Password</label>:\n\
         <input id=\"password\" name=\"password\" type=\"password\" required autofocus>\n\
         </div>\n<input class=\"btn btn-secondary\" id=\"submit\" name=\"submit\" type=\"submit\" value=\"Go\">\n\
         </form>\n</div>\n</div>\n</body>\n</html>\n",
        escape(room_name)
    );
    page
}

/// `/public`: the public rooms with their occupancy, linking to `/room/<slug>`.
pub fn public_page(rooms: &[PublicRoom]) -> String {
    let mut page = head("Camus Video Chat | Public Rooms");
    page.push_str(
        "<body>\n<div class=\"container content\">\n\
         <div class=\"dialog\" id=\"public-rooms-dialog\">\n<h5>Public rooms</h5>\n",
    );
    if rooms.is_empty() {
        page.push_str("No rooms are available\n");
    } else {
        page.push_str(
            "<table>\n<thead>\n<tr><th>Room</th><th>Participants</th></tr>\n</thead>\n<tbody>\n",
        );
        for room in rooms {
            let limit = match room.guest_limit {
                0 => "&#8734;".to_owned(),
                limit => limit.to_string(),
            };
            let _ = writeln!(
                page,
                "<tr><td><a class=\"boldlink\" id=\"room-link-{slug}\" href=\"/room/{slug}\">{name}</a></td>\
                 <td>{clients} / {limit}</td></tr>",
                slug = escape(&room.slug),
                name = escape(&room.name),
                clients = room.clients,
            );
        }
        page.push_str("</tbody>\n</table>\n");
    }
    page.push_str("</div>\n</div>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_configured_text() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        let page = client_page("<Room>", "dist/chat.js");
        assert!(page.contains("<title>Camus | &lt;Room&gt;</title>"));
        assert!(page.contains("<div id=\"react-root\""));
        assert!(page.contains("<script src=\"/static/dist/chat.js\"></script>"));
        let form = password_page("R&D", false);
        assert!(form.contains("Join R&amp;D"));
        assert!(form.contains("name=\"password\""));
        assert!(!form.contains("Invalid password"));
        assert!(password_page("R", true).contains("Invalid password"));
    }

    #[test]
    fn public_page_lists_rooms() {
        assert!(public_page(&[]).contains("No rooms are available"));
        let page = public_page(&[
            PublicRoom {
                name: "Lobby <1>".into(),
                slug: "lobby-1".into(),
                clients: 2,
                guest_limit: 0,
            },
            PublicRoom {
                name: "Pair".into(),
                slug: "pair".into(),
                clients: 0,
                guest_limit: 2,
            },
        ]);
        assert!(page.contains("href=\"/room/lobby-1\">Lobby &lt;1&gt;</a>"));
        assert!(page.contains("<td>2 / &#8734;</td>"));
        assert!(page.contains("<td>0 / 2</td>"));
    }
}
