"""The web client in headless Chromium, against a real chat-server: what a person does."""

import re
from urllib.parse import quote

from playwright.sync_api import expect

from conftest import Api, log_in, screenshot


def room_item(page, room_id):
    return page.locator(f'[data-testid="room-item"][data-room-id="{room_id}"]')


def bodies(page):
    return page.locator('#messages [data-testid="message"] [data-testid="message-body"]').all_inner_texts()


def seqs(page):
    items = page.locator('#messages [data-testid="message"]')
    return [int(seq) for seq in items.evaluate_all("items => items.map(i => i.dataset.seq)")]


def test_two_people_chat_live(server, open_page):
    alice = open_page()
    log_in(alice, "alice", register=True)
    bob = open_page()
    log_in(bob, "bob", register=True)

    # Alice makes a room; Bob finds it among the public rooms and joins.
    alice.get_by_test_id("new-room-name").fill("Lobby")
    alice.get_by_test_id("new-room-submit").click()
    expect(alice.get_by_test_id("room-title")).to_have_text("Lobby")
    bob.get_by_text("Public rooms").click()
    bob.get_by_test_id("join").click()
    expect(bob.get_by_test_id("room-title")).to_have_text("Lobby")
    expect(alice.get_by_test_id("room-presence")).to_have_text("2 members")

    # Alice writes; the pending line gives way to the acknowledged message, seen by both.
    alice.get_by_test_id("composer").fill("Hello Bob, café at 5?")
    alice.get_by_test_id("composer").press("Enter")
    for page in (alice, bob):
        expect(page.get_by_test_id("message")).to_have_count(1)
        expect(page.get_by_test_id("message-body")).to_have_text("Hello Bob, café at 5?")
    expect(alice.get_by_test_id("pending")).to_have_count(0)
    expect(alice.get_by_test_id("composer")).to_have_value("")

    # Bob types: Alice sees it; Bob answers with the send button.
    bob.get_by_test_id("composer").press_sequentially("Sure")
    expect(alice.get_by_test_id("typing")).to_have_text("bob is typing…")
    bob.get_by_test_id("send").click()
    expect(alice.get_by_test_id("message")).to_have_count(2)
    expect(alice.get_by_test_id("message-body").nth(1)).to_have_text("Sure")
    expect(alice.get_by_test_id("typing")).to_have_text("")
    assert seqs(alice) == seqs(bob) == [1, 2]
    screenshot(alice, "chat")

    # A phone-width screen shows one column at a time.
    phone = open_page(width=390, height=760)
    log_in(phone, "bob")
    expect(phone.get_by_test_id("room-list")).to_be_visible()
    expect(phone.locator("#room")).to_be_hidden()
    phone.get_by_test_id("room-item").click()
    expect(phone.get_by_test_id("message")).to_have_count(2)
    expect(phone.get_by_test_id("room-list")).to_be_hidden()
    screenshot(phone, "phone")

    # Presence: Alice is online while her page is open, and offline once it is closed.
    alice_dot = bob.get_by_test_id("member").filter(has_text="alice").locator(".presence")
    expect(alice_dot).to_have_class(re.compile(r"\bonline\b"))
    alice.close()
    expect(alice_dot).to_have_class(re.compile(r"\boffline\b"))


def test_unread_badge_appears_live_and_clears_when_read(server, open_page):
    alice = Api(server.base, "alice").register()
    bob = Api(server.base, "bob").register()
    busy, quiet = alice.create_room("busy"), alice.create_room("quiet")
    bob.join(busy)
    bob.join(quiet)

    page = open_page()
    log_in(page, "bob")
    room_item(page, quiet).click()
    expect(room_item(page, busy).get_by_test_id("unread-badge")).to_have_count(0)

    for n in range(3):
        alice.send(busy, f"news {n}")
    expect(room_item(page, busy).get_by_test_id("unread-badge")).to_have_text("3")
    # A mention is counted apart.
    alice.call("POST", f"/rooms/{busy}/messages", {"body": "@bob look", "mentions": [bob.id]})
    expect(room_item(page, busy).get_by_test_id("unread-badge")).to_have_text("4")
    expect(room_item(page, busy).get_by_test_id("mention-badge")).to_have_text("@1")

    # Messages in the room on screen are read as they arrive: no badge there.
    alice.send(quiet, "psst")
    expect(page.get_by_test_id("message-body")).to_have_text(["psst"])
    expect(room_item(page, quiet).get_by_test_id("unread-badge")).to_have_count(0)

    room_item(page, busy).click()
    expect(page.get_by_test_id("message")).to_have_count(4)
    expect(room_item(page, busy).get_by_test_id("unread-badge")).to_have_count(0)
    expect(room_item(page, busy).get_by_test_id("mention-badge")).to_have_count(0)
    expect(page.locator(".message.mentioned")).to_have_count(1)
    # The marker moved on the server, not just in the page.
    assert bob.call("GET", f"/rooms/{busy}/unread")["unread"] == 0
    assert bob.call("GET", f"/rooms/{quiet}/unread")["unread"] == 0


def test_scroll_back_loads_older_pages_in_order(server, open_page):
    alice = Api(server.base, "alice").register()
    room = alice.create_room("history")
    for n in range(1, 131):
        alice.send(room, f"message {n}")

    page = open_page()
    log_in(page, "alice")
    room_item(page, room).click()
    # The newest page first, at the bottom.
    expect(page.get_by_test_id("message")).to_have_count(50)
    assert bodies(page)[-1] == "message 130"

    # Scrolling to the top loads older pages until the first message.
    timeline = page.locator("#timeline")
    for _ in range(20):
        if page.get_by_test_id("message").count() == 130:
            break
        timeline.evaluate("t => { t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); }")
        page.wait_for_timeout(200)
    expect(page.get_by_test_id("message")).to_have_count(130)
    expect(page.get_by_test_id("load-older")).to_be_hidden()
    assert seqs(page) == list(range(1, 131))
    assert bodies(page) == [f"message {n}" for n in range(1, 131)]


def test_restarted_server_the_page_catches_up_without_gaps_or_repeats(server, open_page):
    alice = Api(server.base, "alice").register()
    bob = Api(server.base, "bob").register()
    room = alice.create_room("durable")
    bob.join(room)
    bob.send(room, "before")

    page = open_page()
    log_in(page, "alice")
    room_item(page, room).click()
    expect(page.get_by_test_id("message-body")).to_have_text(["before"])

    server.stop()
    expect(page.get_by_test_id("connection")).to_have_text("Offline: reconnecting…")
    # A send while the server is away fails visibly, and is kept for a retry.
    page.get_by_test_id("composer").fill("sent while away")
    page.get_by_test_id("composer").press("Enter")
    expect(page.get_by_test_id("send-failed")).to_be_visible()

    server.start()
    bob.log_in()
    for n in range(5):
        bob.send(room, f"meanwhile {n}")
    expect(page.get_by_test_id("message")).to_have_count(6)
    page.get_by_test_id("retry").click()
    expect(page.get_by_test_id("message")).to_have_count(7)
    expect(page.get_by_test_id("pending")).to_have_count(0)
    # Live again: the next message comes over the new socket.
    bob.send(room, "after")
    expect(page.get_by_test_id("message")).to_have_count(8)
    assert seqs(page) == list(range(1, 9))
    assert bodies(page) == ["before", *[f"meanwhile {n}" for n in range(5)], "sent while away", "after"]
    expect(page.get_by_test_id("connection")).to_have_text("")


def test_a_message_with_markup_shows_as_text(server, open_page):
    alice = Api(server.base, "alice").register()
    bob = Api(server.base, "bob").register()
    room = alice.create_room("safe")
    bob.join(room)

    page = open_page()
    log_in(page, "bob")
    room_item(page, room).click()
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold</b>'
    alice.send(room, hostile)

    body = page.get_by_test_id("message-body")
    expect(body).to_have_text(hostile)
    assert body.evaluate("b => b.children.length") == 0
    assert page.evaluate("window.pwned") is None
    assert page.locator("#messages img, #messages script, #messages b").count() == 0


def test_direct_conversation_from_the_directory(server, open_page):
    Api(server.base, "carol").register()
    page = open_page()
    log_in(page, "dave", register=True)
    page.get_by_text("People").click()
    page.get_by_test_id("person").filter(has_text="carol").click()
    expect(page.get_by_test_id("room-title")).to_have_text("carol")
    page.get_by_test_id("composer").fill("hi carol")
    page.get_by_test_id("composer").press("Enter")
    expect(page.get_by_test_id("message-body")).to_have_text(["hi carol"])
    expect(page.get_by_test_id("room-item")).to_have_text("carol")

    carol = open_page()
    log_in(carol, "carol")
    expect(carol.get_by_test_id("room-item").get_by_test_id("unread-badge")).to_have_text("1")


def test_an_expired_access_token_is_refreshed_and_logout_ends_the_login(server, open_page):
    page = open_page()
    log_in(page, "erin", register=True)

    # An access token the server refuses (as an expired one): the page trades its refresh
    # token for a new pair and carries on.
    stored = "JSON.parse(localStorage.getItem('chat.login'))"
    page.evaluate(f"() => {{ const l = {stored}; l.access = 'expired'; localStorage.setItem('chat.login', JSON.stringify(l)); }}")
    page.reload()
    expect(page.get_by_test_id("logout")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("")
    assert page.evaluate(f"() => {stored}.access") != "expired"

    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-submit")).to_be_visible()
    # The login is gone: a reload stays logged out.
    page.reload()
    expect(page.get_by_test_id("login-submit")).to_be_visible()


def test_threads_and_reactions(server, open_page):
    alice = Api(server.base, "alice").register()
    bob = Api(server.base, "bob").register()
    carol = Api(server.base, "carol").register()
    general, random = alice.create_room("general"), alice.create_room("random")
    for person in (bob, carol):
        person.join(general)
        person.join(random)
    alice.send(general, "Welcome to general! The release is on Friday.")
    question = carol.send(general, "Who reviews the web client?")["id"]
    bob.send(random, "Lunch at noon?")
    bob.call("POST", f"/rooms/{random}/messages", {"body": "@alice are you in?", "mentions": [alice.id]})
    carol.call("POST", f"/direct/{alice.id}/messages", {"body": "See you at the demo"})

    page = open_page(width=1280, height=720)
    log_in(page, "alice")
    room_item(page, general).click()
    expect(page.get_by_test_id("message")).to_have_count(2)

    # Alice reacts; Bob's reaction arrives live.
    message = page.locator(f'[data-testid="message"][data-id="{question}"]')
    message.hover()
    message.get_by_role("button", name="React with 👍").click()
    expect(message.get_by_test_id("reaction")).to_have_text("👍 1")
    bob.call("PUT", f"/rooms/{general}/messages/{question}/reactions/{quote('🎉')}")
    expect(message.get_by_test_id("reaction")).to_have_text(["👍 1", "🎉 1"])

    # Alice answers in a thread; Bob's reply arrives live in it; the room shows the count.
    message.hover()
    message.get_by_test_id("reply-in-thread").click()
    page.get_by_test_id("thread-composer").fill("I will, after lunch.")
    page.get_by_test_id("thread-composer").press("Enter")
    thread = page.get_by_test_id("thread-messages")
    expect(thread.get_by_test_id("message-body")).to_have_text(
        ["Who reviews the web client?", "I will, after lunch."]
    )
    bob.call("POST", f"/rooms/{general}/messages", {"body": "Thanks!", "thread_root": question})
    expect(thread.get_by_test_id("message")).to_have_count(3)
    expect(message.get_by_test_id("thread-link")).to_have_text("2 replies")
    # Replies live in the thread, not in the room's timeline.
    expect(page.locator("#messages").get_by_test_id("message")).to_have_count(2)
    expect(room_item(page, random).get_by_test_id("mention-badge")).to_have_text("@1")
    page.locator(".room").click(position={"x": 400, "y": 300})
    screenshot(page, "web-client")


def test_usable_with_the_keyboard_alone(server, open_page):
    Api(server.base, "frank").register()
    page = open_page()
    keys = page.keyboard
    # The login form has the focus; Tab and Enter do the rest.
    keys.type("frank")
    keys.press("Tab")
    keys.type("correct horse battery")
    keys.press("Enter")
    expect(page.get_by_test_id("logout")).to_be_visible()

    focused = "() => document.activeElement.dataset.testid"
    for _ in range(10):
        if page.evaluate(focused) == "new-room-name":
            break
        keys.press("Tab")
    assert page.evaluate(focused) == "new-room-name"
    keys.type("keys")
    keys.press("Enter")
    expect(page.get_by_test_id("room-title")).to_have_text("keys")
    # The new room's composer has the focus.
    expect(page.get_by_test_id("composer")).to_be_focused()
    keys.type("typed, not clicked")
    keys.press("Enter")
    expect(page.get_by_test_id("message-body")).to_have_text(["typed, not clicked"])


def test_a_room_created_while_the_room_list_loads_stays_open(server, open_page):
    Api(server.base, "gina").register()
    page = open_page()
    # The room list's first listing is held until the room has been created.
    held = []

    def hold_the_first(route):
        if route.request.method == "GET" and not held:
            held.append(route)
        else:
            route.continue_()

    page.route(lambda url: "/rooms?" in url and "mine=true" in url, hold_the_first)
    log_in(page, "gina")
    page.get_by_test_id("new-room-name").fill("early")
    page.get_by_test_id("new-room-submit").click()
    expect(page.get_by_test_id("room-title")).to_have_text("early")

    # It arrives without the room, and the client fetches the list again.
    listings = []

    def the_second(response):
        if "/rooms?" in response.url and "mine=true" in response.url:
            listings.append(response)
        return len(listings) == 2

    with page.expect_response(the_second):
        held[0].fulfill(json={"items": [], "next_cursor": None})
    expect(page.get_by_test_id("room-title")).to_have_text("early")
    expect(page.get_by_test_id("room-list")).to_contain_text("early")


def test_search_and_mentions_open_the_room_at_the_message(server, open_page):
    alice = Api(server.base, "alice").register()
    bob = Api(server.base, "bob").register()
    room = alice.create_room("reports")
    bob.join(room)
    for n in range(1, 81):
        if n == 3:
            bob.send(room, "The Quarterly report is ready")
        elif n == 5:
            bob.call("POST", f"/rooms/{room}/messages", {"body": "@alice please read it", "mentions": [alice.id]})
        else:
            bob.send(room, f"chatter {n}")

    page = open_page()
    log_in(page, "alice")
    # Search: case aside, a prefix finds the word; the room opens scrolled back to it.
    page.get_by_test_id("search").fill("quart")
    expect(page.get_by_test_id("search-result")).to_have_count(1)
    expect(page.get_by_test_id("search-result")).to_contain_text("The Quarterly report is ready")
    page.get_by_test_id("search-result").click()
    found = page.locator('#messages [data-testid="message"][data-seq="3"]')
    expect(found).to_be_in_viewport()
    expect(found).to_have_class(re.compile(r"\bfound\b"))

    page.get_by_text("Mentions of me").click()
    expect(page.get_by_test_id("mention")).to_have_count(1)
    expect(page.get_by_test_id("mention")).to_contain_text("@alice please read it")
    page.get_by_test_id("mention").click()
    expect(page.locator('#messages [data-testid="message"][data-seq="5"]')).to_be_in_viewport()


def test_editing_and_deleting_my_message_reaches_the_others(server, open_page):
    alice = Api(server.base, "alice").register()
    bob = Api(server.base, "bob").register()
    room = alice.create_room("edits")
    bob.join(room)
    pages = {}
    for name in ("alice", "bob"):
        pages[name] = open_page()
        log_in(pages[name], name)
        room_item(pages[name], room).click()
    mine, theirs = pages["alice"], pages["bob"]
    mine.get_by_test_id("composer").fill("see you at noom")
    mine.get_by_test_id("composer").press("Enter")
    expect(theirs.get_by_test_id("message-body")).to_have_text(["see you at noom"])

    # Only my own messages offer editing; the answer to the prompt is the new text.
    message = mine.get_by_test_id("message")
    message.hover()
    mine.once("dialog", lambda dialog: dialog.accept("see you at noon"))
    message.get_by_test_id("edit").click()
    expect(theirs.get_by_test_id("message-body")).to_have_text(["see you at noon"])
    expect(theirs.locator(".message .edited")).to_have_count(1)
    theirs.get_by_test_id("message").hover()
    expect(theirs.get_by_test_id("edit")).to_have_count(0)

    message.hover()
    mine.once("dialog", lambda dialog: dialog.accept())
    message.get_by_test_id("delete").click()
    for page in (mine, theirs):
        expect(page.get_by_test_id("message-body")).to_have_text(["This message was deleted."])
    assert bob.call("GET", f"/rooms/{room}/messages")["items"][0]["deleted"] is True


def test_a_long_thread_loads_older_replies_in_order(server, open_page):
    alice = Api(server.base, "alice").register()
    room = alice.create_room("long")
    root = alice.send(room, "a long discussion")["id"]
    for n in range(1, 61):
        alice.call("POST", f"/rooms/{room}/messages", {"body": f"reply {n}", "thread_root": root})

    page = open_page()
    log_in(page, "alice")
    room_item(page, room).click()
    page.get_by_test_id("thread-link").click()
    thread = page.get_by_test_id("thread-messages")
    expect(thread.get_by_test_id("message")).to_have_count(51)
    page.get_by_test_id("thread-older").click()
    expect(thread.get_by_test_id("message")).to_have_count(61)
    expect(page.get_by_test_id("thread-older")).to_be_hidden()
    texts = thread.get_by_test_id("message-body").all_inner_texts()
    assert texts == ["a long discussion", *[f"reply {n}" for n in range(1, 61)]]
