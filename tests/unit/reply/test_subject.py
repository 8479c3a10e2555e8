import pytest
from langchain_core.documents import Document

from rag_guard.reply.subject import check_subject, cited_labels, off_subject_message

SHIPS = [
    Document(
        page_content="The Mary Rose served in Henry VIII's navy for 34 years and sank in the Solent in 1545.",
        metadata={"source": "ships/mary_rose.md", "heading": "Service"},
    ),
    Document(
        page_content="She carried 64 bronze guns on two gun decks. She capsized a mile into her maiden voyage.",
        metadata={"source": "ships/vasa.md", "heading": "Armament"},
    ),
    Document(
        page_content="The Vasa was built in Stockholm between 1626 and 1628.",
        metadata={"source": "ships/vasa.md", "heading": "Building"},
    ),
]


def test_an_answer_citing_another_ship_s_passage_misses_the_ship_asked_about():
    subject = check_subject("How many guns did the Mary Rose carry?", SHIPS, [2])
    assert subject.missing == ["Mary Rose"] and not subject.passed


def test_the_subject_may_stand_in_the_heading_the_file_name_or_another_passage_of_the_same_file():
    assert check_subject("How many guns did the Vasa carry?", SHIPS, [2]).passed  # [3] is the same file
    assert check_subject("What armament did she have?", SHIPS, [2]).passed  # no names: nothing to check
    alone = [Document(page_content="She sank in 1545.", metadata={"source": "mary_rose.md"})]
    assert check_subject("When did the Mary Rose sink?", alone, [1]).passed


def test_a_numbered_name_needs_its_number_and_a_stated_year_must_stand_in_the_cited_document():
    voyagers = [Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "v.md"})]
    assert check_subject("When did Voyager 1 launch?", voyagers, [1]).missing == ["Voyager 1"]
    assert check_subject("What sank in 1545?", SHIPS, [2]).missing == ["1545"]
    assert check_subject("What sank in 1545?", SHIPS, [1]).passed


@pytest.mark.parametrize(
    ("answer", "cited"),
    [
        ("64 [2]", [2]),
        ("It carried 64 guns [2], [3].", [2, 3]),
        ("It sank in 1545.", [1]),
        ("A warship.", [1, 2, 3]),
    ],
)
def test_the_cited_passages_are_the_answer_s_citations_else_those_stating_what_it_names(answer, cited):
    assert cited_labels(answer, SHIPS) == cited


def test_the_message_names_the_mismatch_and_shows_what_the_cited_document_says():
    question = "How many guns did the Mary Rose carry?"
    message = off_subject_message(question, SHIPS, [2], ["Mary Rose"])
    assert message.startswith('The documents I found do not say this about "Mary Rose".')
    assert '[2] (ships/vasa.md), which does not mention "Mary Rose": "She carried 64 bronze guns' in message


def test_a_passage_that_opens_on_an_unnamed_subject_without_a_heading_is_not_called_about_something_else():
    unnamed = [Document(page_content="He was born in 1972 in Enugu.", metadata={"source": "notes.txt"})]
    assert check_subject("Where was James Iroha born?", unnamed, [1]).passed
    headed = [Document(page_content="He was born in 1972 in Enugu.", metadata={"source": "a.md", "heading": "Okafor"})]
    assert check_subject("Where was James Iroha born?", headed, [1]).missing == ["James Iroha"]


def test_a_question_s_first_word_names_its_subject_unless_it_is_a_question_word():
    passage = [Document(page_content="Mookychick is a magazine.", metadata={"source": "m.md", "heading": "Press"})]
    assert check_subject("Mookychick is published where?", passage, [1]).passed
    assert check_subject("Bustle is published where?", passage, [1]).missing == ["Bustle"]


def test_a_name_in_the_possessive_must_be_mentioned_whatever_else_the_question_names():
    galileo = [
        Document(
            page_content="Its magnetometer found an ocean under Europa.",
            metadata={"source": "g.md", "heading": "Galileo"},
        )
    ]
    assert check_subject("What did Cassini's magnetometer find on Europa?", galileo, [1]).missing == ["Cassini"]
    assert check_subject("What did Galileo's magnetometer find on Europa?", galileo, [1]).passed
    assert check_subject("What did the magnetometer find on Europa?", galileo, [1]).passed


def test_a_name_another_retrieved_document_states_while_the_cited_one_does_not_marks_the_wrong_document():
    bridges = [
        Document(page_content="The bridge is painted International Orange.", metadata={"source": "golden_gate.md"}),
        Document(page_content="The Brooklyn Bridge crosses the East River.", metadata={"source": "brooklyn.md"}),
    ]
    assert check_subject("What colour is the Brooklyn Bridge painted?", bridges, [1]).missing == ["Brooklyn Bridge"]
    assert check_subject("What river does the Brooklyn Bridge cross?", bridges, [2]).passed
