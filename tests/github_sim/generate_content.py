"""Discussions, projects (v2) and attachments for a generated world (model_content.py).

Its own random stream (`{size}:{seed}:content`), so everything generate.py made before it
stays exactly as it was. Attachment URLs of every style GitHub has used are written into
bodies of issues, pull requests, comments, reviews, releases and discussions of both owners'
repositories; each style appears for the user and for the organisation, one attachment is
referenced from two bodies, and private repositories hold some (their downloads need access).
"""

from __future__ import annotations

import hashlib
import random
import uuid

from .model import World
from .model_content import (
    IMAGES,
    JWT_MARK,
    PRIVATE_IMAGES,
    WEB,
    Attachment,
    Category,
    Content,
    Discussion,
    DiscussionComment,
    Project,
    ProjectField,
    ProjectItem,
    ProjectView,
)

SPAN = (1_612_000_000, 1_740_000_000)  # inside generate.py's fixed span
REACTIONS = ("THUMBS_UP", "HEART", "HOORAY", "ROCKET", "EYES", "LAUGH")
CATEGORIES = (("General", "general", ":speech_balloon:", False),
              ("Q&A", "q-a", ":pray:", True), ("Ideas", "ideas", ":bulb:", False))
WORDS = "backup mirror archive bundle restore glacier token retry stream month".split()


def iso(epoch: int) -> str:
    from .generate import iso as gen_iso
    return gen_iso(epoch)


class ContentBuilder:
    def __init__(self, world: World):
        self.w = world
        self.rng = random.Random(f"{world.size}:{world.seed}:content")
        self.c = Content()
        self.n = 0

    def stamp(self) -> str:
        return iso(self.rng.randint(*SPAN))

    def text(self, lo: int = 4, hi: int = 12) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(lo, hi)))

    def who(self) -> str:
        from .generate import OTHER_LOGINS, USER_LOGIN
        return self.rng.choice(OTHER_LOGINS[:8] + [USER_LOGIN])

    def reactions(self) -> dict[str, int]:
        picked = self.rng.sample(REACTIONS, self.rng.randint(0, 3))
        return {r: self.rng.randint(1, 4) for r in picked}

    # discussions ---------------------------------------------------------------------

    def discussions(self, full: str) -> None:
        cats = [Category(self.w.new_id(), n, s, e, f"{n} discussions", a, self.stamp())
                for n, s, e, a in CATEGORIES]
        self.c.categories[full] = cats
        out = []
        for number in range(1, self.rng.randint(3, 5) + 1):
            cat = self.rng.choice(cats)
            d = Discussion(self.w.new_id(), 1000 + number, self.text(3, 7), self.text(8, 30),
                           self.who(), cat.id, self.stamp(), "", reactions=self.reactions(),
                           upvotes=self.rng.randint(0, 9), closed=self.rng.random() < 0.2)
            for _ in range(self.rng.randint(0 if number > 1 else 2, 4)):
                c = DiscussionComment(self.w.new_id(), self.who(), self.text(), self.stamp(), "",
                                      self.reactions(), upvotes=self.rng.randint(0, 5))
                c.updated_at = c.created_at
                for _ in range(self.rng.randint(0, 3)):
                    t = self.stamp()
                    c.replies.append(DiscussionComment(self.w.new_id(), self.who(), self.text(),
                                                       t, t, self.reactions()))
                d.comments.append(c)
            if cat.answerable and d.comments:
                d.answer_id = self.rng.choice(d.comments).id
            d.updated_at = max([d.created_at] + [c.created_at for c in d.comments])
            out.append(d)
        self.c.discussions[full] = out

    # projects ------------------------------------------------------------------------

    def projects(self, login: str) -> None:
        repos = [r for r in self.w.repos_of(login) if r.issues]
        out = []
        for number in range(1, 3):
            t = self.stamp()
            p = Project(self.w.new_id(), number, login, f"Roadmap {number}", self.text(3, 8),
                        f"# Roadmap {number}\n\n{self.text()}", number == 1, False,
                        self.w.owners["user"], t, t)
            p.fields = [ProjectField(self.w.new_id(), "Title", "TITLE"),
                        ProjectField(self.w.new_id(), "Status", "SINGLE_SELECT",
                                     [(uuid.UUID(int=self.rng.getrandbits(128)).hex[:8], s)
                                      for s in ("Todo", "In progress", "Done")]),
                        ProjectField(self.w.new_id(), "Estimate", "NUMBER"),
                        ProjectField(self.w.new_id(), "Due", "DATE"),
                        ProjectField(self.w.new_id(), "Notes", "TEXT")]
            p.views = [ProjectView(self.w.new_id(), 1, "Table", "TABLE_LAYOUT", ""),
                       ProjectView(self.w.new_id(), 2, "Board", "BOARD_LAYOUT", "is:open")]
            for _ in range(self.rng.randint(3, 7)):
                values = {"Status": self.rng.choice(["Todo", "In progress", "Done"]),
                          "Estimate": float(self.rng.randint(1, 8)),
                          "Due": iso(self.rng.randint(*SPAN))[:10], "Notes": self.text(2, 5)}
                values = {k: v for k, v in values.items() if self.rng.random() < 0.7}
                if repos and self.rng.random() < 0.7:
                    repo = self.rng.choice(repos)
                    issue = self.rng.choice(repo.issues)
                    kind = "PULL_REQUEST" if issue.pull else "ISSUE"
                    item = ProjectItem(self.w.new_id(), kind, self.stamp(), repo.full_name,
                                       issue.number, values=values)
                else:
                    item = ProjectItem(self.w.new_id(), "DRAFT_ISSUE", self.stamp(),
                                       title=self.text(2, 6), body=self.text(), values=values)
                p.items.append(item)
            out.append(p)
        self.c.projects[login] = out

    # attachments ---------------------------------------------------------------------

    def attachment(self, full: str, style: str) -> Attachment:
        rng = self.rng
        self.n += 1
        uid = uuid.UUID(int=rng.getrandbits(128), version=4)
        png = b"\x89PNG\r\n\x1a\n" + hashlib.sha256(f"{full}{self.n}".encode()).digest() * 20
        if style == "asset":
            att = Attachment(f"{WEB}user-attachments/assets/{uid}", full, "image/png", png)
        elif style == "file":
            att = Attachment(f"{WEB}user-attachments/files/{rng.randint(10**7, 10**8)}/"
                             f"build-{self.n}.log", full, "text/plain",
                             f"log {self.n} of {full}\n".encode() * rng.randint(5, 50))
        else:
            host = PRIVATE_IMAGES if style == "private" else IMAGES
            tail = f"?jwt={JWT_MARK}" if style == "private" else ""
            att = Attachment(f"{host}{rng.randint(10**5, 10**7)}/{rng.randint(10**8, 10**9)}-"
                             f"{uid}.png{tail}", full, "image/png", png)
        self.c.attachments[att.key] = att
        return att

    def attach(self, login: str) -> None:
        """Every style into bodies of the owner's repositories, one of them twice."""
        repos = [r for r in self.w.repos_of(login) if r.issues or r.releases]
        private = [r for r in repos if r.private]
        bodies = []  # (repo, object with .body)
        for r in repos:
            for issue in r.issues[:12]:
                bodies.append((r, issue))
                bodies += [(r, c) for c in issue.comments[:2]]
                if issue.pull:
                    bodies += [(r, v) for v in issue.pull.reviews if v.body][:1]
            bodies += [(r, rel) for rel in r.releases[:1]]
            bodies += [(r, d) for d in self.c.discussions.get(r.full_name, [])]
            bodies += [(r, c) for d in self.c.discussions.get(r.full_name, [])
                       for c in d.comments[:1]]
        picks = self.rng.sample(bodies, min(len(bodies), 10))
        if private:  # a private repository's attachment needs the token
            picks[0] = next(b for b in bodies if b[0].private)
        kinds = [type(o).__name__ for _, o in picks]
        for need in ("Release", "Discussion", "Review"):  # every kind of body holds one
            if need not in kinds and (b := next((b for b in bodies
                                                 if type(b[1]).__name__ == need), None)):
                picks.append(b)
        styles = ["asset", "file", "legacy", "private"]
        first = None
        for k, (repo, obj) in enumerate(picks):
            att = self.attachment(repo.full_name, styles[k % len(styles)])
            label = "![screenshot]" if att.content_type == "image/png" else "[build.log]"
            obj.body = f"{obj.body}\n\n{label}({att.url})\n"
            first = first or (repo, att)
        repo, att = first
        again = next(o for r, o in bodies if r is repo and att.url not in o.body)
        again.body = f"{again.body}\n\nSame as above: {att.url}\n"

    def build(self) -> Content:
        for login in self.w.owners.values():
            candidates = [r for r in self.w.repos_of(login) if not r.fork and not r.empty]
            chosen = [r for r in candidates if self.rng.random() < 0.5] or candidates[:1]
            for r in chosen:
                self.discussions(r.full_name)
            self.projects(login)
            self.attach(login)
        return self.c


def add_content(world: World) -> None:
    """Discussions, projects and attachments into `world.content`."""
    world.content = ContentBuilder(world).build()
