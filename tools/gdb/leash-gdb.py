# SPDX-License-Identifier: MIT
# leash-gdb.py -- gdb commands for leash's coroutines.
#
#   (gdb) source /usr/local/share/leash/leash-gdb.py
#   (gdb) info coroutines            every registered coroutine: id, state,
#                                    wait reason, wait object, spawn site,
#                                    name
#   (gdb) coroutine 7 bt             backtrace of coroutine 7 (parked or
#                                    runnable: walks its saved frame
#                                    pointers from g->sp)
#
# Works on a live process and on a core file: it only reads memory, through
# gdb's value API, starting at the registry (G_shards, src/coro.h) and
# the fields of struct coroutine. Needs the program's (or libleash.so's)
# debug information (leash builds with -g by default) and frame pointers
# (leash's build and leash.pc use -fno-omit-frame-pointer). x86-64 and
# aarch64. A running coroutine's stack is the thread's: `thread N` + `bt`.
#
# docs/DEBUGGING.md has a session.

import gdb

# enum gstate and enum wait_reason (src/coro.h), with the strings of
# wait_reason_str (src/error.c).
_STATES = {0: "idle", 1: "runnable", 2: "running", 3: "waiting", 4: "dead"}
_CHAN_REASONS = (1, 2)  # WR_CHAN_SEND, WR_CHAN_RECV: wait_obj is a channel
_OBJ_MAGIC = 0x4C455348
_OBJ_TYPES = {1: "chan", 2: "context", 3: "ticker", 4: "group"}
_MAX_FRAMES = 64


def _reasons():
    """The wait reason strings, read from the program when it has them."""
    try:
        arr = gdb.parse_and_eval("reasons")
        n = arr.type.range()[1] + 1
        out = {}
        for i in range(n):
            p = arr[i]
            out[i] = p.string() if int(p) else "?"
        return out
    except gdb.error:
        return {0: "running", 1: "chan send", 2: "chan receive",
                3: "chan send (nil chan)", 4: "chan receive (nil chan)",
                5: "select", 6: "select (no cases)", 7: "sleep",
                8: "IO wait", 9: "sync.Mutex.Lock", 10: "sync.RWMutex.RLock",
                11: "sync.RWMutex.Lock", 12: "sync.Cond.Wait",
                13: "sync.WaitGroup.Wait", 14: "sync.Once.Do",
                15: "leash.Group.Wait", 16: "leash.Run", 17: "runnable",
                18: "syscall"}


def _coroutines():
    """Every registered g (struct coroutine values), ordered by id."""
    try:
        shards = gdb.parse_and_eval("G_shards")
    except gdb.error:
        raise gdb.GdbError("leash: no G_shards symbol (not a leash program, "
                           "or no debug information for libleash)")
    gs = []
    lo, hi = shards.type.range()
    for i in range(lo, hi + 1):
        sh = shards[i]
        slots = sh["slots"]
        n = int(sh["nslots"])
        if not int(slots) or n <= 0:
            continue
        for j in range(n):
            p = slots[j]
            if int(p):
                gs.append(p.dereference())
    gs.sort(key=lambda g: int(g["id"]))
    return gs


def _find(gid):
    for g in _coroutines():
        if int(g["id"]) == gid:
            return g
    raise gdb.GdbError("leash: no coroutine %d" % gid)


def _str(p):
    try:
        return p.string() if int(p) else None
    except gdb.error:
        return None


def _where(pc, is_return=True):
    """(function, 'file:line' or None) for a code address; a function
    inlined into others reads 'inner (inlined into outer)'."""
    look = pc - 1 if is_return and pc else pc
    funcs = []
    try:
        b = gdb.block_for_pc(look)
        while b is not None and not b.is_global and not b.is_static:
            if b.function is not None:
                funcs.append(b.function.print_name)
            b = b.superblock
    except RuntimeError:
        pass
    if funcs:
        func = funcs[0]
        if len(funcs) > 1:
            func += " (inlined into %s)" % " < ".join(funcs[1:])
    else:
        func = "?"
        try:
            m = gdb.execute("info symbol 0x%x" % look, to_string=True)
            if not m.startswith("No symbol"):
                func = m.split(" in section")[0].strip()
        except gdb.error:
            pass
    sal = gdb.find_pc_line(look)
    if sal.symtab is not None and sal.line:
        return func, "%s:%d" % (sal.symtab.filename, sal.line)
    return func, None


def _spawn_site(g):
    f = _str(g["spawn_file"])
    if f:
        return "%s:%d" % (f, int(g["spawn_line"]))
    pc = int(g["spawn_pc"])
    if pc:
        func, loc = _where(pc)
        return loc if loc else func.split(" ")[0]
    return "?"


def _wait_obj(g, reason):
    obj = int(g["wait_obj"])
    if not obj:
        return "-"
    if reason in _CHAN_REASONS:
        try:
            o = gdb.Value(obj).cast(gdb.lookup_type("lobj").pointer())
            if int(o["magic"]) == _OBJ_MAGIC:
                t = _OBJ_TYPES.get(int(o["type"]), "object")
                f = _str(o["file"]) or "?"
                return "%s#%d(%s:%d)" % (t, int(o["id"]), f, int(o["line"]))
        except gdb.error:
            pass
    return "0x%x" % obj


class InfoCoroutines(gdb.Command):
    """List leash's coroutines: id, state, wait reason, wait object, spawn
site and name. A running coroutine's wait reason says "running"."""

    def __init__(self):
        super().__init__("info coroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        reasons = _reasons()
        gs = _coroutines()
        print("%6s  %-8s  %-22s  %-28s  %-28s  %s" % (
            "ID", "STATE", "WAIT", "OBJECT", "SPAWNED AT", "NAME"))
        for g in gs:
            st = int(g["state"])
            wr = int(g["wait_reason"]) if st == 3 else 0
            state = _STATES.get(st, str(st))
            wait = reasons.get(wr, str(wr)) if st == 3 else "-"
            obj = _wait_obj(g, wr) if st == 3 else "-"
            name = g["name"].string() if int(g["name"][0]) else ""
            if bool(g["is_main"]):
                name = name or "(main)"
            print("%6d  %-8s  %-22s  %-28s  %-28s  %s" % (
                int(g["id"]), state, wait, obj, _spawn_site(g), name))
        print("%d coroutine(s)" % len(gs))


def _saved_frames(g):
    """(pc, fp) of the first frame of a switched-out g: what
    mctx_switch pushed (src/arch/switch_*.S)."""
    sp = int(g["sp"])
    u64 = gdb.lookup_type("unsigned long long").pointer()
    arch = gdb.selected_inferior().architecture().name()
    words = gdb.Value(sp).cast(u64)
    if "x86-64" in arch or "x86_64" in arch:
        # [0] mxcsr/fpcw [1] r15 [2] r14 [3] r13 [4] r12 [5] rbx [6] rbp
        # [7] return address
        return int(words[7]), int(words[6])
    if "aarch64" in arch:
        # switch_aarch64.S: x29 (fp) and x30 (lr) stored at sp + 48
        return int(words[7]), int(words[6])
    raise gdb.GdbError("leash: coroutine bt supports x86-64 and aarch64, "
                       "not %s" % arch)


def _walk(g):
    pc, fp = _saved_frames(g)
    u64 = gdb.lookup_type("unsigned long long").pointer()
    frames = []
    lo = int(g["stack"]["lo"])
    hi = int(g["stack"]["hi"])
    while pc and len(frames) < _MAX_FRAMES:
        frames.append(pc)
        if not fp or fp < lo or fp >= hi or fp & 7:
            break
        w = gdb.Value(fp).cast(u64)
        nfp = int(w[0])
        pc = int(w[1])
        if nfp <= fp:  # frames go up the stack
            if pc:
                frames.append(pc)
            break
        fp = nfp
    return frames


class CoroutineCmd(gdb.Command):
    """coroutine N bt: the backtrace of coroutine N, from its saved frame
pointers (it must be switched out: waiting or runnable)."""

    def __init__(self):
        super().__init__("coroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 2 or argv[1] not in ("bt", "backtrace"):
            raise gdb.GdbError("usage: coroutine N bt")
        try:
            gid = int(argv[0])
        except ValueError:
            raise gdb.GdbError("usage: coroutine N bt")
        g = _find(gid)
        st = int(g["state"])
        if st == 2:
            raise gdb.GdbError(
                "leash: coroutine %d is running: its stack is its worker "
                "thread's (thread N, then bt)" % gid)
        if bool(g["foreign"]) or not int(g["stack"]):
            raise gdb.GdbError("leash: coroutine %d is a plain thread" % gid)
        for i, pc in enumerate(_walk(g)):
            func, loc = _where(pc, is_return=True)
            print("#%-2d 0x%016x in %s%s" % (
                i, pc, func, " at " + loc if loc else ""))


InfoCoroutines()
CoroutineCmd()
