"""GitHub Actions (.github/workflows/): every action pinned to a commit, and
the Images workflow building what the production overlay runs, by digest."""

import re
from pathlib import Path

import pytest
import yaml

from tests.kubernetes.conftest import render_production
from tests.kubernetes.test_invariants import OUR_IMAGES, containers, workloads

BASE_DIR = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((BASE_DIR / ".github/workflows").glob("*.y*ml"))
IMAGES_WORKFLOW = BASE_DIR / ".github/workflows/images.yml"
# The production overlay's images file, which the Images workflow writes.
IMAGES_FILE = "deploy/kubernetes/overlays/production/images/kustomization.yaml"


def steps(workflow: Path) -> list[dict]:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [step for job in jobs.values() for step in job.get("steps", [])]


def test_every_action_is_pinned_to_a_commit():
    """`uses: owner/action@<40 hex> # vX.Y.Z`: a tag can be moved to other
    code by whoever controls the action's repository; a commit cannot.
    Dependabot (.github/dependabot.yml) proposes the new commit and comment."""
    uses = []
    for workflow in WORKFLOWS:
        for number, line in enumerate(workflow.read_text().splitlines(), 1):
            found = re.match(r"\s*(?:- )?uses: (\S+)(.*)$", line)
            if found:
                uses.append(found[1])
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", found[1]), (
                    f"{workflow.name}:{number}: {found[1]}"
                )
                assert re.fullmatch(r" # v\d+\.\d+\.\d+", found[2]), (
                    f"{workflow.name}:{number}: no version comment"
                )
    # Every step with `uses` was seen by the line scan above.
    assert (
        len(uses) == sum("uses" in step for workflow in WORKFLOWS for step in steps(workflow)) > 0
    )


def test_the_images_workflow_builds_each_image_the_manifests_run():
    """A build of each Dockerfile target the manifests run, for amd64 and
    arm64, pushed, tagged with the commit; and the job that pushes is the
    only one that may write packages."""
    workflow = yaml.safe_load(IMAGES_WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read"}
    builds = {
        step["with"]["target"]: step["with"]
        for step in steps(IMAGES_WORKFLOW)
        if step.get("uses", "").startswith("docker/build-push-action@")
    }
    assert set(builds) == set(OUR_IMAGES.values())
    for image, target in OUR_IMAGES.items():
        build = builds[target]
        assert build["file"] == "deploy/Dockerfile" and build["push"] is True, target
        assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}, target
        suffix = image.rsplit("/", 1)[1]
        assert (
            build["tags"] == f"${{{{ steps.names.outputs.prefix }}}}-{suffix}:${{{{ github.sha }}}}"
        )
    for name, job in workflow["jobs"].items():
        if any(
            step.get("uses", "").startswith("docker/build-push-action@") for step in job["steps"]
        ):
            assert job["permissions"] == {"contents": "read", "packages": "write"}, name
        else:
            assert "packages" not in job.get("permissions", {}), name


def written_images_file(prefix: str, digests: dict[str, str]) -> str:
    """The file the Images workflow writes: its heredoc, with the values."""
    (step,) = (step for step in steps(IMAGES_WORKFLOW) if step.get("id") == "overlay")
    found = re.search(
        rf"cat > {re.escape(IMAGES_FILE)} <<EOF\n(.*?)\nEOF\n", step["run"], re.DOTALL
    )
    assert found, step["run"]
    values = {"PREFIX": prefix, "GITHUB_SHA": "0" * 40}
    values |= {f"{target.upper()}_DIGEST": digest for target, digest in digests.items()}
    # Each value is the step's environment (GitHub's own GITHUB_SHA aside).
    assert set(re.findall(r"\$\{(\w+)\}", found[1])) == set(step["env"]) | {"GITHUB_SHA"}
    return re.sub(r"\$\{(\w+)\}", lambda match: values[match[1]], found[1])


@pytest.mark.parametrize("shipped", [False, True])
def test_the_production_overlay_runs_the_images_the_workflow_pushed(tmp_path, shipped):
    """With the images file as the workflow writes it, the production
    overlay runs exactly the pushed images, by digest; as shipped, a
    placeholder that renders, by digest too, and that no registry has."""
    prefix = "ghcr.io/owner/repository"
    digests = {"app": "sha256:" + "a" * 64, "nginx": "sha256:" + "b" * 64}
    pushed = {f"{prefix}-{suffix}@{digest}" for suffix, digest in digests.items()}

    def with_the_written_file(overlay):
        if not shipped:
            (overlay / "images/kustomization.yaml").write_text(written_images_file(prefix, digests))

    docs = render_production(tmp_path, with_the_written_file)
    images = {container["image"] for doc in workloads(docs) for container in containers(doc)}
    if shipped:
        assert images == {
            f"ghcr.io/your-account/{image.replace('/', '-')}@sha256:{'0' * 64}"
            for image in OUR_IMAGES
        }
    else:
        assert images == pushed
