"""Admin commands: refusals, /status, the /relabel flow, /retrain, /rollback and hot model reloads."""

from __future__ import annotations

import re

import pytest
from bot_harness import ADMIN_ID, GREY, RED, assert_no_errors, harness, image_bytes
from model_factory import make_model_dir

from bot.replies import NO_PENDING, NOT_ADMIN, RETRAIN_NOT_CONFIGURED


@pytest.fixture
async def h(tmp_path, caplog):
    async with harness(tmp_path) as running:
        yield running
    assert_no_errors(caplog, running.fake)


@pytest.mark.parametrize("command", ["/status", "/relabel", "/retrain", "/rollback"])
async def test_non_admins_are_refused_politely_and_it_is_logged(h, caplog, command):
    eve = h.fake.private_chat(1001)
    eve.send_text(command)
    assert (await eve.next_message())["text"] == NOT_ADMIN
    refusals = [r.getMessage() for r in caplog.records if r.name == "bot.handlers.admin"]
    assert refusals == [f"refused admin action {command!r} from user 1001"]
    assert h.services.store.current() == "v0001"


async def test_status(h):
    user, admin = h.fake.private_chat(1002), h.fake.private_chat(ADMIN_ID)
    for color in (RED, GREY, GREY):
        user.send_photo(image_bytes(color))
        reply = await user.next_message()
    await user.answer(user.press(reply, "fb:3:1"))
    admin.send_text("/status")
    text = (await admin.next_message())["text"]
    assert "Model: v0001, accuracy 80.0% (grouped split)" in text
    assert "Predictions today: 3 (total 3)" in text
    # Both grey photos are the same image, but each is its own prediction to label; one got feedback.
    assert "Low-confidence images waiting for a label: 1" in text
    assert "Feedback from users: 1 (0 confirmed, 1 corrected)" in text
    assert re.search(r"Uptime: 0:00:\d\d", text)


async def test_relabel_flow(h):
    user, admin = h.fake.private_chat(1003), h.fake.private_chat(ADMIN_ID)
    admin.send_text("/relabel")
    assert (await admin.next_message())["text"] == NO_PENDING
    first, second = image_bytes(GREY), image_bytes((100, 100, 100), fmt="PNG")
    for data in (first, image_bytes(RED), second):
        user.send_photo(data)
        await user.next_message()

    admin.send_text("/relabel")
    shown = await admin.next_message()
    assert shown["caption"].startswith("Low-confidence #1 (model v0001)")
    assert h.fake.file_bytes(shown["photo"][-1]["file_id"]) == first
    labels = [[b["callback_data"] for b in row] for row in shown["reply_markup"]["inline_keyboard"]]
    assert labels == [["rl:1:0", "rl:1:1", "rl:1:2"], ["rl:1:skip"]]

    answer = await admin.answer(admin.press(shown, "rl:1:1"))
    assert answer["text"] == "#1 labelled 隶书 lishu (clerical)."
    following = await admin.next_message()
    edited = h.fake.message(admin.chat_id, shown["message_id"])
    assert edited["caption"] == "#1 labelled 隶书 lishu (clerical)." and "reply_markup" not in edited
    record = h.services.db.get(1)
    assert (record.label_given, record.label_by, record.label_source) == ("lishu", ADMIN_ID, "admin")

    assert following["caption"].startswith("Low-confidence #3")
    assert h.fake.file_bytes(following["photo"][-1]["file_id"]) == second
    await admin.answer(admin.press(following, "rl:3:skip"))
    assert (await admin.next_message())["text"] == NO_PENDING
    assert h.services.db.get(3).skipped and h.services.db.get(3).label_given is None


async def test_relabel_buttons_validate_their_target(h):
    user, admin = h.fake.private_chat(1004), h.fake.private_chat(ADMIN_ID)
    for color in (RED, GREY):
        user.send_photo(image_bytes(color))
        await user.next_message()
    admin.send_text("/status")
    await admin.next_message()
    # A confident prediction is not for relabeling; a missing one or a class out of range changes nothing.
    status_message = h.fake.bot_messages[admin.chat_id][0]
    for forged in ("rl:1:0", "rl:1:skip", "rl:77:0", "rl:2:9", "rl:2:x"):
        answer = await admin.answer(admin.press(status_message, forged))
        assert answer["text"] == "This button is no longer valid."
    for prediction_id in (1, 2):
        record = h.services.db.get(prediction_id)
        assert record.label_given is None and not record.skipped


async def test_retrain_is_not_configured_yet(h):
    admin = h.fake.private_chat(ADMIN_ID)
    admin.send_text("/retrain")
    assert (await admin.next_message())["text"] == RETRAIN_NOT_CONFIGURED


async def test_rollback_with_nothing_to_roll_back_to(h):
    admin = h.fake.private_chat(ADMIN_ID)
    admin.send_text("/rollback")
    assert (await admin.next_message())["text"].startswith("Cannot roll back: nothing to roll back to")
    assert h.services.classifier.version == "v0001"


async def test_promoted_version_is_picked_up_and_rollback_returns(tmp_path, caplog):
    async with harness(tmp_path, reload_seconds=0.2) as h:
        store = h.services.store
        store.promote(store.add(make_model_dir(tmp_path / "retrained", gain=4.0)))
        await h.fake.wait_until(lambda: h.services.classifier.version == "v0002", what="the reload job")
        user, admin = h.fake.private_chat(1005), h.fake.private_chat(ADMIN_ID)
        user.send_photo(image_bytes(RED))
        assert "model v0002" in (await user.next_message())["text"]
        admin.send_text("/rollback")
        assert (await admin.next_message())["text"] == "Rolled back to v0001. Now serving v0001."
        assert store.current() == "v0001"
        user.send_photo(image_bytes(RED))
        assert "model v0001" in (await user.next_message())["text"]
    assert_no_errors(caplog, h.fake)
