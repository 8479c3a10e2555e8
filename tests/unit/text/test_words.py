from rag_guard.text.words import states

VASA = "The Vasa was a Swedish warship. She sank on her maiden voyage on 10 August 1628 and was raised in 1961."


def test_a_text_states_an_answer_when_it_holds_its_content_words():
    assert states(VASA, "10 August 1628") and states(VASA, "on 10 August, 1628")
    assert not states(VASA, "August 1627") and not states(VASA, "the")
