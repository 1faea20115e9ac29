"""The role × action table: what each account may do with each CLI command, inside and outside its scope.

Columns (:data:`ACCOUNTS`): the demo's administrator, an unscoped clerk, a clerk scoped to 笔架山街道,
the 笔架山街道 supervisor, the 怡景园社区 staff, the warden of 怡景园 第1网格, a warden with no grid,
a disabled account, an unknown name and an empty ``--as ""``. Rows (:data:`CASES`): every command and
sub-command of the real parser (``gridman.cli.build_parser``), each with variants — ``in`` acts on
怡景园 第1网格 (inside every scoped account's scope), ``out`` on 琥珀街道 (outside all of them), ``-``
where a command has no target. ``{name}`` in an argument list is filled from the world the test
builds (ids, codes, files).

Outcomes: ``O`` ok — exit 0 and the effect happened (``effect``: a query whose answer changes), the
output shows only rows of the actor's scope; ``R`` refused — exit 2, a translated message, nothing
changed (audit included); ``N`` not found — the same answer as for an id that does not exist (no
existence oracle across scope); ``X`` rejected — exit 1, the rows refused with a reason, nothing
changed. Outputs of scoped accounts never contain the out-of-scope resident's
name, ID number, phone or address (:data:`FAR_MARKERS`), nor a case's ``leaks``.

``KNOWN_WRONG``: cells that are wrong on today's code, by cause; each is expected to fail
(``xfail(strict=True)``) until its fix lands — then remove its entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridman.core.services.export import LISTS  # every export list gets its rows

ACCOUNTS = ("admin", "clerk", "aclerk", "street", "community", "warden", "nogrid", "disabled", "unknown", "empty")
USERNAMES = {"admin": "admin", "clerk": "clerk", "aclerk": "clerk_bjs", "street": "street", "community": "community",
             "warden": "warden", "nogrid": "warden_nogrid", "disabled": "clerk_disabled", "unknown": "nobody",
             "empty": ""}
UNRESTRICTED = frozenset({"admin", "clerk"})  # accounts that see the far street
SIGN_IN_FAILS = frozenset({"disabled", "unknown", "empty"})  # refused before any command runs

OUTCOMES = {"O": "ok", "R": "refused", "N": "not_found", "X": "rejected"}

# The out-of-scope resident (琥珀街道 琥珀西园社区 第1网格): name, ID number, phone, address.
FAR_MARKERS = ("丁思琰", "340104197905120586", "17168484311", "潜山路琥珀名邸")

# Commands being added by other helpers of issue #16; each needs its rows here once merged.
PENDING: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One row: ``command`` (the parser path), ``variant``, the argument list, the expected outcome
    per account (one letter per column of :data:`ACCOUNTS`)."""

    command: str
    variant: str
    argv: str
    expect: str
    effect: str | None = None  # SQL whose answer an ok cell changes
    guard: str | None = None  # SQL whose answer no cell of a scoped account changes (the far street's state)
    known: tuple[str, ...] = ()  # FAR_MARKERS the command's own input holds (not a leak when echoed)
    leaks: tuple[str, ...] = ()  # more strings a scoped account's output must not contain
    shows_far: bool = False  # an unrestricted ok cell's output contains FAR_MARKERS[0] (the check can fail)
    local: bool = False  # the cell gets its own copy of the offline local database
    audited: bool = False  # writes nothing but the audit row of its check (a dry run, a rejected file)
    admin_details: bool = False  # ``leaks`` are shown to administrators only (not to an unscoped clerk)

    @property
    def key(self) -> str:
        return f"{self.command}/{self.variant}"

    def outcome(self, account: str) -> str:
        codes = self.expect.split()
        assert len(codes) == len(ACCOUNTS), f"{self.key}: {len(codes)} outcomes for {len(ACCOUNTS)} accounts"
        return OUTCOMES[codes[ACCOUNTS.index(account)]]


#        admin clerk aclerk street community warden nogrid disabled unknown empty
ALL_OK = "O O O O O O O R R R"
# the unauthenticated system commands (whoever holds the database file or its URL): no sign-in asked
SYSTEM = "O O O O O O O O O O"
ADMIN_ONLY = "O R R R R R R R R R"
READ_IN = "O O O O O O R R R R"  # everyone who can sign in and has the grid in scope
READ_IN_BY_ID = "O O O O O O N R R R"  # a record named by id: outside the scope it does not exist
READ_OUT = "O O R R R R R R R R"
NF_OUT = "O O N N N N N R R R"
EXPORT_IN = "O O O O O R R R R R"  # export right: not wardens
EXPORT_OUT = "O O R R R R R R R R"
IMPORT_IN = "O O O R R R R R R R"  # import right: administrators and clerks
CASE_TABLE = "SELECT status || level || version FROM incidents WHERE id = {inc_in}"
FAR_CASES = "SELECT sum(version) FROM incidents WHERE grid_id IN (SELECT id FROM areas WHERE code LIKE '{S_OUT}%')"
FAR_RESIDENT = "SELECT grid_id || name || version FROM residents WHERE id = {res_out}"

CASES: tuple[Case, ...] = (
    # --- db, sample, stats ---------------------------------------------------------------------
    Case("db init", "-", "db init", SYSTEM),
    Case("db upgrade", "-", "db upgrade", SYSTEM),
    Case("db check", "-", "db check --json", SYSTEM, leaks=('"residents": {n_residents}',), admin_details=True),
    Case("sample", "-", "sample --out {out_db} --seed 7", SYSTEM),
    Case("stats", "-", "stats --json", ALL_OK, leaks=('"residents": {n_residents}',)),
    Case("stats mediation", "in", "stats mediation --area {G_IN} --json", READ_IN),
    Case("stats mediation", "out", "stats mediation --area {S_OUT} --json", READ_OUT),
    # --- areas, grids, coverage ------------------------------------------------------------------
    Case("areas import-geojson", "in", "areas import-geojson {geo_in} --level grid", ADMIN_ONLY,
         effect="SELECT name FROM areas WHERE code = '{G_IN}'"),
    Case("areas import-geojson", "out", "areas import-geojson {geo_out} --level grid", ADMIN_ONLY,
         effect="SELECT name FROM areas WHERE code = '{G_OUT}'"),
    Case("areas import", "in", "areas import {geo_in} --level grid", ADMIN_ONLY,
         effect="SELECT name FROM areas WHERE code = '{G_IN}'"),
    Case("areas import", "out", "areas import {geo_out} --level grid", ADMIN_ONLY,
         effect="SELECT name FROM areas WHERE code = '{G_OUT}'"),
    Case("areas add", "in", "areas add 340104001099 矩阵社区 --level community", ADMIN_ONLY,
         effect="SELECT count(*) FROM areas"),
    Case("areas add", "out", "areas add 340104002099 矩阵社区 --level community", ADMIN_ONLY,
         effect="SELECT count(*) FROM areas"),
    Case("areas export-geojson", "in", "areas export-geojson --area {G_IN} --out {out_geojson}", EXPORT_IN),
    Case("areas export-geojson", "out", "areas export-geojson --area {G_OUT} --out {out_geojson}", EXPORT_OUT),
    Case("areas measure", "in", "areas measure {G_IN}", READ_IN),
    Case("areas measure", "out", "areas measure {G_OUT}", READ_OUT),
    Case("grids check", "in", "grids check --area {G_IN}", READ_IN),
    Case("grids check", "out", "grids check --area {S_OUT}", READ_OUT),
    Case("grids assign", "in", "grids assign --area {G_IN}", ADMIN_ONLY),
    Case("grids assign", "out", "grids assign --area {S_OUT}", ADMIN_ONLY),
    Case("grids split", "in", "grids split {G_IN} --line {line_in}", ADMIN_ONLY),
    Case("grids split", "out", "grids split {G_OUT} --line {line_out}", ADMIN_ONLY),
    Case("grids merge", "in", "grids merge {G_IN} {G_IN2}", ADMIN_ONLY),
    Case("grids merge", "out", "grids merge {G_OUT} {G_OUT2}", ADMIN_ONLY),
    Case("grids edit", "in", "grids edit {geo_in}", ADMIN_ONLY),
    Case("grids edit", "out", "grids edit {geo_out}", ADMIN_ONLY),
    Case("coverage", "in", "coverage --facility-kind service_center --area {G_IN}", READ_IN),
    Case("coverage", "out", "coverage --facility-kind service_center --area {S_OUT}", READ_OUT),
    # --- incidents -------------------------------------------------------------------------------
    Case("incidents report", "in", "incidents report --grid {G_IN} --category hazard --title 矩阵上报 "
         "--resident {res_in}", "O O O O O O R R R R", effect="SELECT count(*) FROM incidents"),
    Case("incidents report", "out", "incidents report --grid {G_OUT} --category hazard --title 矩阵上报",
         "O O R R R R R R R R", effect="SELECT count(*) FROM incidents"),
    Case("incidents report", "party_out", "incidents report --grid {G_IN} --category hazard --title 矩阵上报 "
         "--resident {res_out}", "O O N N N N R R R R", effect="SELECT count(*) FROM incidents"),
    Case("incidents report", "building_out", "incidents report --grid {G_IN} --category hazard --title 矩阵上报 "
         "--building {bld_out}", "O O N N N N R R R R", effect="SELECT count(*) FROM incidents"),
    Case("incidents report", "now", "incidents report --grid {G_IN} --category hazard --title 矩阵上报 "
         "--now 2026-01-01T09:00", "O R R R R R R R R R", effect="SELECT count(*) FROM incidents"),
    Case("incidents show", "in", "incidents show {inc_in}", READ_IN_BY_ID),
    Case("incidents show", "out", "incidents show {inc_out}", NF_OUT, shows_far=True),
    # a case of one's grid with a party from another street: the party's name is part of the case;
    # their ID number, phone and address (the register's) are not shown
    Case("incidents show", "party_out", "incidents show {inc_mixed}", READ_IN_BY_ID, shows_far=True,
         known=FAR_MARKERS[:1]),
    # a grid-level case is accepted by its warden (and administrators)
    Case("incidents act", "in", "incidents act accept {inc_in}", "O R R R R O N R R R", effect=CASE_TABLE),
    Case("incidents act", "out", "incidents act accept {inc_out}", "O R N N N N N R R R",
         effect="SELECT status FROM incidents WHERE id = {inc_out}"),
    Case("incidents act", "now", "incidents act accept {inc_in} --now 2026-12-01T09:00", ADMIN_ONLY,
         effect=CASE_TABLE),
    Case("incidents queue", "-", "incidents queue --limit 500", "O O O O O O O R R R"),
    Case("incidents queue", "in", "incidents queue --area {G_IN} --limit 500", READ_IN),
    Case("incidents queue", "out", "incidents queue --area {S_OUT} --limit 500", READ_OUT),
    Case("incidents escalate-overdue", "-", "incidents escalate-overdue", "O R R O O O O R R R", guard=FAR_CASES),
    Case("incidents escalate-overdue", "now", "incidents escalate-overdue --now 2026-12-31T09:00",
         "O R R R R R R R R R"),
    Case("incidents policy", "-", "incidents policy", ALL_OK),
    Case("incidents policy", "set", "incidents policy --set grid 9", ADMIN_ONLY,
         effect="SELECT group_concat(days) FROM time_limit_policies"),
    # --- census import, export, reports ----------------------------------------------------------
    Case("import census", "in", "import census {census_in} --area {G_IN}", IMPORT_IN,
         effect="SELECT count(*) FROM residents"),
    Case("import census", "out", "import census {census_out} --area {G_OUT}", "O O R R R R R R R R",
         effect="SELECT count(*) FROM residents"),
    Case("import census", "rematch", "import census {census_rematch} --area {G_IN}", "O O X R R R R R R R",
         effect=FAR_RESIDENT, guard=FAR_RESIDENT, known=FAR_MARKERS[:2], audited=True),
    Case("import census", "dry_oracle", "import census {census_oracle} --area {G_IN} --dry-run",
         "X X X R R R R R R R", guard=FAR_RESIDENT, audited=True),
    Case("import list", "-", "import list", IMPORT_IN, leaks=("琥珀导入",)),
    Case("import undo", "in", "import undo {batch_in}", IMPORT_IN,
         effect="SELECT status FROM import_batches WHERE id = {batch_in}"),
    Case("import undo", "out", "import undo {batch_out}", "O O R R R R R R R R",
         effect="SELECT status FROM import_batches WHERE id = {batch_out}"),
    Case("import undo", "mixed", "import undo {batch_mixed}", "O O R R R R R R R R",
         effect="SELECT status FROM import_batches WHERE id = {batch_mixed}",
         guard="SELECT count(*) FROM residents WHERE name = '矩阵庚'"),
    Case("export", "template", "export template residents --out {out_xlsx}", ALL_OK),
    Case("export", "tag_filter", "export residents --area {G_IN} --filter tag=吸毒人员 --out {out_xlsx}",
         "O R R O O R R R R R"),
    *(Case("export", f"{name}_{side}", f"export {name} --area {{{area}}} --out {{out_xlsx}}", expect,
           shows_far=(name, side) == ("residents", "out"))
      for name in LISTS for side, area, expect in (("in", "G_IN", EXPORT_IN), ("out", "S_OUT", EXPORT_OUT))),
    Case("export", "residents_all", "export residents --out {out_xlsx}", "O O O O O R R R R R", shows_far=True),
    Case("report monthly", "in", "report monthly --area {G_IN} --month 2026-10 --out {out_xlsx}", EXPORT_IN),
    Case("report monthly", "out", "report monthly --area {S_OUT} --month 2026-10 --out {out_xlsx}", EXPORT_OUT),
    # --- offline exchange ------------------------------------------------------------------------
    Case("exchange checkout", "in", "exchange checkout --area {G_IN} --out {out_xlsx}", EXPORT_IN,
         effect="SELECT count(*) FROM exchange_packages"),
    Case("exchange checkout", "out", "exchange checkout --area {G_OUT} --out {out_xlsx}", EXPORT_OUT,
         effect="SELECT count(*) FROM exchange_packages"),
    Case("exchange checkin", "in", "exchange checkin {xbook_in}", IMPORT_IN,
         effect="SELECT count(*) FROM import_batches"),
    Case("exchange checkin", "out", "exchange checkin {xbook_out}", "O O R R R R R R R R",
         effect="SELECT count(*) FROM import_batches"),
    Case("exchange open", "-", "exchange open {xbook_in} --db {out_db}", ALL_OK),
    Case("exchange export", "-", "exchange export --db {local_db} --out {out_xlsx}", ALL_OK, local=True),
    Case("exchange list", "-", "exchange list", "O O O O O O O R R R", leaks=("{xpkg_out}",)),
    Case("exchange undo", "in", "exchange undo {xbatch_in}", IMPORT_IN,
         effect="SELECT status FROM import_batches WHERE id = {xbatch_in}"),
    Case("exchange undo", "out", "exchange undo {xbatch_out}", "O O R R R R R R R R",
         effect="SELECT status FROM import_batches WHERE id = {xbatch_out}"),
    # --- backups (the whole database: only who may back up) and signing in -----------------------
    Case("backup create", "-", "backup create", ADMIN_ONLY),
    Case("backup list", "-", "backup list", ADMIN_ONLY),
    Case("backup schedule", "-", "backup schedule", ADMIN_ONLY),
    Case("backup schedule", "set", "backup schedule --every-days 3", ADMIN_ONLY,
         effect="SELECT count(*) FROM settings"),
    # another gridman database of this schema (an offline copy) is a backup in the old format
    Case("backup verify", "-", "backup verify {local_db}", ADMIN_ONLY, local=True),
    Case("backup restore", "-", "backup restore {local_db}", ADMIN_ONLY, local=True),
    Case("whoami", "-", "whoami --json", ALL_OK),
    Case("logout", "-", "logout", SYSTEM),  # ends the session in the file, whoever it was
    # --- accounts: administrators manage them; everyone changes their own password ---------------
    Case("users add", "-", "users add matrix_new --role warden --password-file {pw_file}", ADMIN_ONLY,
         effect="SELECT count(*) FROM users"),
    Case("users list", "-", "users list --json", ADMIN_ONLY),
    Case("users edit", "-", "users edit warden_nogrid --name 矩阵改名", ADMIN_ONLY,
         effect="SELECT display_name FROM users WHERE username = 'warden_nogrid'"),
    Case("users disable", "-", "users disable warden_nogrid", ADMIN_ONLY,
         effect="SELECT active FROM users WHERE username = 'warden_nogrid'"),
    Case("users unlock", "-", "users unlock warden_nogrid", ADMIN_ONLY),
    Case("users passwd", "other", "users passwd warden_nogrid --password-file {pw_file}", ADMIN_ONLY,
         effect="SELECT password_hash FROM users WHERE username = 'warden_nogrid'"),
    # no password source and no terminal: refused (the password is never an argument)
    Case("login", "-", "login admin", "R R R R R R R R R R"),
)

# Commands the parser cannot list (a positional word that selects a sub-command).
HIDDEN_COMMANDS = ("stats mediation",)

# Placeholders that name an out-of-scope record by id, and an id that does not exist instead:
# a not_found cell answers exactly as the same command with these replaced.
MISSING = {"inc_out": "999999", "res_out": "999999", "bld_out": "999999", "batch_out": "999999",
           "xbatch_out": "999999"}


def _wrong(cause: str, cells: dict[str, str]) -> dict[tuple[str, str], str]:
    return {(key, account): cause for key, accounts in cells.items() for account in accounts.split()}


# Cells wrong on today's code: (case key, account) → cause. Remove a group when its fix merges.
KNOWN_WRONG: dict[tuple[str, str], str] = {}  # every group fixed by issue #16's slices (D1, B)
