import pytest

from rag_guard.reply.grounding import check_grounding, states_number

PASSAGES = [
    "In spring a queen can lay well over a thousand eggs a day. Workers live about six weeks in summer.",
    "Voyager 2 launched on 20 August 1977. Axolotls are found only in Lake Xochimilco near Mexico City.",
    "The World Cube Association (WCA) was founded in 2004. About 1.5 million people live in the region, "
    'which the guide calls "the lake country".',
]


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        ("A queen can lay 2000 eggs a day in spring [1].", ["2000"]),
        ("A queen can lay two thousand eggs a day [1].", ["2000"]),
        ("It launched on 5 September 1977 [2].", ["5", "September"]),
        ("Axolotls live in Lake Chalco [2].", ["Lake Chalco"]),
        ("It was founded in 2005 by the WCA.", ["2005"]),
        ("Some 2.5 million people live there.", ["2500000"]),
        ('The guide calls it "the river country".', ['"the river country"']),
        ("It was founded by NASA in 2004.", ["NASA"]),
    ],
)
def test_an_item_the_passages_lack_is_unsupported(answer, unsupported):
    grounding = check_grounding(answer, PASSAGES)
    assert grounding.unsupported == unsupported
    assert not grounding.passed


@pytest.mark.parametrize(
    "answer",
    [
        "A queen can lay well over a thousand eggs a day [1].",
        "A queen can lay over 1,000 eggs a day [1].",
        "Workers live about 6 weeks in summer [1].",
        "Voyager 2 was launched on 20 August 1977 [2].",
        "Axolotls live only in Lake Xochimilco, near Mexico City [2].",
        "The World Cube Association was founded in 2004 [3].",
        "About 1,500,000 people live in the region [3].",
        "About 1.5 million people live there [3].",
        'The guide calls it "the lake country" [3].',
        "Yes. One of the queens lays eggs; the workers live six weeks.",
        "It is one of the lakes near the city.",
    ],
)
def test_what_the_passages_state_passes_however_it_is_written(answer):
    grounding = check_grounding(answer, PASSAGES)
    assert grounding.unsupported == []
    assert grounding.passed


def test_a_sentence_s_first_word_is_not_taken_for_a_name():
    assert check_grounding("Because workers live six weeks [1].", PASSAGES).checked == ["6 weeks"]


def test_citation_markers_are_not_numbers():
    assert check_grounding("It launched in 1977 [2], [3].", PASSAGES).checked == ["1977"]


def test_accents_case_and_possessives_do_not_matter():
    passages = ["The Québec bridge opened in 1917."]
    assert check_grounding("Quebec's bridge opened in 1917.", passages).passed


def test_an_answer_in_the_passages_words_passes_with_only_its_numbers_names_and_quotes_listed():
    grounding = check_grounding("It is one of the lakes near the city.", PASSAGES)
    assert grounding.passed and grounding.checked == []


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        ("It is the largest of them.", ["largest"]),
        ("Mumbai, the financial capital.", ["mumbai", "financial", "capital"]),
        ("Queens are monotypic [1].", ["monotypic"]),
    ],
)
def test_a_content_word_neither_the_passages_nor_the_question_hold_is_unsupported(answer, unsupported):
    assert check_grounding(answer, PASSAGES).unsupported == unsupported


def test_a_content_word_from_the_question_is_not_an_invention():
    question = "Do axolotls tolerate brackish water?"
    assert check_grounding("Axolotls tolerate brackish water [2].", PASSAGES, question).passed
    assert check_grounding("Axolotls tolerate brackish water [2].", PASSAGES).unsupported == [
        "tolerate",
        "brackish",
        "water",
    ]


def test_a_denial_needs_a_passage_sentence_that_denies_it():
    assert check_grounding("Axolotls are not found in Lake Xochimilco [2].", PASSAGES).unsupported == ["not"]
    passages = ["Axolotls are not found outside Lake Xochimilco."]
    assert check_grounding("Axolotls are not found outside Lake Xochimilco.", passages).passed


@pytest.mark.parametrize(
    ("answer", "passage", "unsupported"),
    [
        (
            "There are three lines of Greek text on the stone.",
            "The decree is inscribed on the stone in Greek text. The same text appears three times, in three scripts.",
            ["3 lines"],
        ),
        (
            "There are 10 species of tardigrade known.",
            "Dried out, a tardigrade is known to survive for ten days. Several species live in moss.",
            ["10 species"],
        ),
    ],
)
def test_a_number_is_supported_only_beside_what_it_counts(answer, passage, unsupported):
    assert check_grounding(answer, [passage]).unsupported == unsupported


@pytest.mark.parametrize(
    ("answer", "passage"),
    [
        ("The Greek text runs to 54 lines.", "Its Greek text runs to 54 lines, the longest of the three."),
        ("Tardigrades survive ten days without water.", "Tardigrades survive without water for 10 days."),
        ("A queen can lay over a thousand eggs a day.", "In spring a queen lays well over 1,000 eggs a day."),
    ],
)
def test_a_number_stated_with_what_it_counts_in_one_sentence_passes(answer, passage):
    assert check_grounding(answer, [passage]).passed


@pytest.mark.parametrize(
    ("answer", "passage"),
    [
        ("Western European culture [1].", "They adopted the culture of Western Europe."),
        ("The Normans [1].", "The Norman conquest began in 1066."),
        ("Italian cities [1].", "Cities of Italy traded with them."),
    ],
)
def test_a_plural_or_a_people_s_adjective_stands_for_the_name_the_passage_uses(answer, passage):
    assert check_grounding(answer, [passage]).passed


def test_a_name_stem_never_shortens_a_different_place_into_the_passage_s_name():
    passage = "The Norman kings ruled England after 1066."
    assert check_grounding("They ruled Normandy [1].", [passage]).unsupported == ["Normandy"]


def test_a_figure_in_digits_or_words_is_a_stated_number_but_one_of_many_is_not():
    assert states_number("flow more than ten kilometres a year")
    assert states_number("rarely deeper than about 30 metres")
    assert not states_number("one of the largest glaciers")
    assert not states_number("Ice sheets cover Antarctica.")
