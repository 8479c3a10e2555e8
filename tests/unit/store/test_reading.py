from langchain_core.documents import Document

from rag_guard.store.reading import as_read, distinct

TEXT = "The Vasa sank on 10 August 1628. " * 3 + "She was raised in 1961 and now stands in a museum."


def chunk(source: str, start: int, end: int, score: float, text: str = TEXT) -> Document:
    return Document(
        id=f"{source}:{start}",
        page_content=text[start:end],
        metadata={"source": source, "start_index": start, "score": score, "heading": "Vasa"},
    )


def test_overlapping_chunks_of_one_file_read_as_one_passage_in_document_order_with_the_overlap_once():
    later, earlier = chunk("vasa.md", 60, len(TEXT), 0.8), chunk("vasa.md", 0, 80, 0.6)
    (passage,) = as_read([later, earlier])
    assert passage.page_content == TEXT
    assert passage.metadata["score"] == 0.8 and passage.metadata["start_index"] == 0
    assert passage.id == later.id  # the passage ranks where its best piece did


def test_chunks_of_other_files_or_far_apart_stay_apart_in_rank_order():
    chunks = [chunk("vasa.md", 0, 30, 0.9), chunk("mary-rose.md", 30, 60, 0.8), chunk("vasa.md", 90, 120, 0.7)]
    assert [c.page_content for c in as_read(chunks)] == [c.page_content for c in chunks]


def test_a_chunk_between_two_others_joins_all_three():
    chunks = [chunk("vasa.md", 0, 50, 0.9), chunk("vasa.md", 90, len(TEXT), 0.8), chunk("vasa.md", 40, 100, 0.7)]
    (passage,) = as_read(chunks)
    assert passage.page_content == TEXT


def test_chunks_that_only_touch_are_joined_with_a_space():
    text = "First sentence.Second sentence."
    (passage,) = as_read([chunk("a.md", 0, 15, 0.9, text), chunk("a.md", 15, len(text), 0.8, text)])
    assert passage.page_content == "First sentence. Second sentence."


def test_chunks_without_an_offset_are_kept_as_given():
    loose = [Document(page_content="a", metadata={"source": "x"}), Document(page_content="b", metadata={"source": "x"})]
    assert as_read(loose) == loose


def test_copies_of_a_text_are_dropped_for_the_next_distinct_chunk_keeping_the_best_ranked():
    first, copy = chunk("vasa.md", 0, 60, 0.9), chunk("backup/vasa.md", 0, 60, 0.9, text=TEXT.replace(". ", ".  "))
    other, last = chunk("vasa.md", 60, 120, 0.7), chunk("vasa.md", 120, len(TEXT), 0.6)
    assert distinct([first, copy, other, last], k=2) == [first, other]
