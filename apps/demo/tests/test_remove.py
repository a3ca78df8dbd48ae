"""apps/demo/remove.py's promise, checked in seconds rather than after a whole
removal: once the marked lines go, no file of the platform mentions the demo."""

from apps.demo.remove import DEMO, MENTION, demo_unmarked, project_texts


def test_every_mention_of_the_demo_outside_it_is_marked():
    left = [
        f"{path.relative_to(DEMO.parents[1])}:{number}: {line.strip()}"
        for path, text in project_texts()
        for number, line in enumerate(demo_unmarked(text).splitlines(), 1)
        if MENTION.search(line)
    ]
    assert left == [], "mark these [demo], or their block, for make remove-demo"
