"""Feedback by button and by /feedback, and the images kept for relabeling, over real HTTP."""

from __future__ import annotations

import hashlib

import pytest
from bot_harness import BLUE, GREEN, GREY, RED, assert_no_errors, harness, image_bytes

from bot.replies import FEEDBACK_USAGE, NOT_ADMIN, NOT_YOUR_PHOTO, STALE_BUTTON


@pytest.fixture
async def h(tmp_path, caplog):
    async with harness(tmp_path) as running:
        yield running
    assert_no_errors(caplog, running.fake)


async def predict(chat, data: bytes) -> dict:
    chat.send_photo(data)
    return await chat.next_message()


def stored(h, prediction_id: int):
    return h.services.db.get(prediction_id)


async def edited(h, chat, reply: dict, contains: str) -> dict:
    """The prediction message once the bot has edited `contains` into it."""

    def shown() -> dict | None:
        message = h.fake.message(chat.chat_id, reply["message_id"])
        return message if contains in message["text"] else None

    return await h.fake.wait_until(shown, what=f"the prediction message to show {contains!r}")


def images(h) -> list[str]:
    root = h.settings.images_dir
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_correct_button_records_the_label_and_keeps_the_image(h):
    alice = h.fake.private_chat(1001)
    photo = image_bytes(GREEN)
    reply = await predict(alice, photo)
    assert images(h) == [], "a confident prediction keeps no image until someone labels it"
    answer = await alice.answer(alice.press(reply, "fb:1:1"))
    assert answer["text"] == "Recorded: 隶书 lishu (clerical). Thank you!"
    record = stored(h, 1)
    assert (record.label_given, record.label_by, record.label_source) == ("lishu", 1001, "user")
    await h.fake.wait_until(lambda: stored(h, 1).image, what="the image to be kept")
    assert images(h) == [hashlib.sha256(photo).hexdigest() + ".jpg"]
    assert (h.settings.images_dir / images(h)[0]).read_bytes() == photo
    message = await edited(h, alice, reply, "Your answer: 隶书 lishu (clerical). Thank you!")
    assert message["reply_markup"]["inline_keyboard"][0][0]["text"] == "• ✓ correct •"


async def test_a_user_can_change_their_answer(h):
    bob = h.fake.private_chat(1002)
    reply = await predict(bob, image_bytes(RED))
    await bob.answer(bob.press(reply, "fb:1:2"))
    assert stored(h, 1).label_given == "xiaozhuan"
    again = await bob.answer(bob.press(reply, "fb:1:2"))
    assert again["text"] == "Recorded: 小篆 xiaozhuan (small seal). Thank you!"
    await bob.answer(bob.press(reply, "fb:1:0"))
    assert stored(h, 1).label_given == "kaishu"
    marked = (await edited(h, bob, reply, "Your answer: 楷书"))["reply_markup"]["inline_keyboard"]
    assert marked[0][0]["text"] == "• ✓ correct •"
    assert [b["text"] for b in marked[1]] == ["隶书 lishu", "小篆 xiaozhuan"]


async def test_only_the_sender_can_answer(h):
    alice_in_group = h.fake.group_chat(-100, 1001)
    reply = await predict(alice_in_group, image_bytes(BLUE))
    mallory_in_group = h.fake.group_chat(-100, 1666)
    answer = await mallory_in_group.answer(mallory_in_group.press(reply, "fb:1:0"))
    assert answer["text"] == NOT_YOUR_PHOTO and answer["show_alert"] in ("true", "True", True)
    assert stored(h, 1).label_given is None
    mallory_in_group.send_text("/feedback 1 kaishu")
    assert (await mallory_in_group.next_message())["text"] == NOT_YOUR_PHOTO
    assert stored(h, 1).label_given is None


@pytest.mark.parametrize("data", ["fb:99:0", "fb:1:7", "fb:1:skip", "fb:01:0", "nonsense", "fb:1:0:extra", ""])
async def test_forged_or_stale_buttons_change_nothing(h, data):
    carol = h.fake.private_chat(1003)
    reply = await predict(carol, image_bytes(RED))
    answer = await carol.answer(carol.press(reply, data))
    assert answer["text"] == STALE_BUTTON
    assert stored(h, 1).label_given is None


async def test_relabel_buttons_are_refused_to_users(h):
    dave = h.fake.private_chat(1004)
    reply = await predict(dave, image_bytes(GREY))
    answer = await dave.answer(dave.press(reply, "rl:1:0"))
    assert answer["text"] == NOT_ADMIN
    assert stored(h, 1).label_given is None


async def test_feedback_command_as_a_reply(h):
    erin = h.fake.private_chat(1005)
    reply = await predict(erin, image_bytes(RED))
    erin.send_text("/feedback lishu", reply_to=reply)
    assert (await erin.next_message())["text"] == "Recorded: 隶书 lishu (clerical). Thank you!"
    assert stored(h, 1).label_given == "lishu"
    await edited(h, erin, reply, "Your answer: 隶书 lishu (clerical)")


@pytest.mark.parametrize(
    ("command", "label"),
    [("/feedback 1 小篆", "xiaozhuan"), ("/feedback #1 small seal", "xiaozhuan"), ("/feedback 1 Clerical", "lishu")],
)
async def test_feedback_command_with_the_prediction_number(h, command, label):
    frank = h.fake.private_chat(1006)
    await predict(frank, image_bytes(RED))
    frank.send_text(command)
    assert (await frank.next_message())["text"].startswith("Recorded:")
    assert stored(h, 1).label_given == label


async def test_feedback_command_mistakes_get_clear_answers(h):
    grace = h.fake.private_chat(1007)
    reply = await predict(grace, image_bytes(RED))
    grace.send_text("/feedback 1 cursive")
    assert (await grace.next_message())["text"] == (
        "I don't know the style 'cursive'. Valid styles: 楷书 kaishu, 隶书 lishu, 小篆 xiaozhuan"
    )
    grace.send_text("/feedback")
    assert (await grace.next_message())["text"] == FEEDBACK_USAGE
    grace.send_text("/feedback 99999 lishu")
    assert (await grace.next_message())["text"].startswith("I can't find that answer of mine.")
    question = grace.send_text("what is this?")
    await grace.next_message()
    grace.send_text("/feedback lishu", reply_to=question)
    assert (await grace.next_message())["text"].startswith("I can't find that answer of mine.")
    grace.send_text("/feedback", reply_to=reply)
    assert (await grace.next_message())["text"] == FEEDBACK_USAGE
    assert stored(h, 1).label_given is None


async def test_low_confidence_image_is_stored_once(h):
    heidi, ivan = h.fake.private_chat(1008), h.fake.private_chat(1009)
    grey = image_bytes(GREY)
    first = await predict(heidi, grey)
    second = await predict(ivan, grey)
    assert first["text"].startswith("I'm not sure.") and second["text"].startswith("I'm not sure.")
    name = hashlib.sha256(grey).hexdigest() + ".jpg"
    assert images(h) == [name]
    assert stored(h, 1).image == stored(h, 2).image == name
    assert stored(h, 1).low_confidence and stored(h, 1).file_unique_id == stored(h, 2).file_unique_id
    await heidi.answer(heidi.press(first, "fb:1:2"))
    assert images(h) == [name]


async def test_every_prediction_is_stored_with_its_details(h):
    judy = h.fake.private_chat(1010)
    message_photo = image_bytes(BLUE)
    judy.send_photo(message_photo)
    reply = await judy.next_message()
    await h.fake.wait_until(lambda: stored(h, 1).reply_message_id, what="the reply id to be stored")
    record = stored(h, 1)
    sent = h.fake.calls_of("getFile")[0].params["file_id"]
    assert (record.user_id, record.chat_id, record.file_id) == (1010, 1010, sent)
    assert record.model_version == "v0001" and record.label == "xiaozhuan"
    assert list(record.probs) == ["kaishu", "lishu", "xiaozhuan"]
    assert abs(sum(record.probs.values()) - 1) < 1e-6
    assert record.reply_message_id == reply["message_id"]
    assert record.created_at.tzinfo is not None
