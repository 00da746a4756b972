"""The kernel's must-shows, driven with jupyter_client and nbclient against the installed
kernelspec AUTOAWAIT_KERNEL_NAME (default "autoawait"), i.e. the real Lua engine:

* a message with a bad HMAC signature is not executed;
* interrupt_request cancels `await(sleep(30))` promptly and the next cell works;
* output of a task spawned in cell 1, printed while cell 2 runs, carries cell 1's
  parent header;
* input() is asked over stdin and answered;
* `%autoawait tokio-host` runs cells (and their tasks) on the kernel's own loop;
* nbclient runs a notebook headless and each output lands in its own cell
  (AUTOAWAIT_NOTEBOOK=path runs that notebook too, e.g. examples/tour.ipynb);
* robustness (issue 11): a CPU-bound cell under `tokio-host` is interrupted within
  2 s and `input()` there is answered; the heartbeat answers while a cell spins;
  10,000 printed lines arrive in order; `io.stdout:write`, `io.stderr:write` and
  child processes reach the cell; protocol 5.5 with subshells; `exit` asks the
  front end to exit; 20,000 lines land in a handful of notebook outputs;
  `jupyter run --kernel=autoawait file.lua` prints the file's output;
* `%autoawait twisted-host` (issue 13): a task's five prints and a `call_later`
  callback carry the parent header of the cell that started them while the next
  cell runs, no reactor thread is added, deferreds fire, an interrupt ends
  `await(twisted.sleep(30))` within a second.

Run with: "$VENV/bin/python" -m unittest -v test_client
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

import nbformat
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session
from nbclient import NotebookClient

KERNEL = os.environ.get("AUTOAWAIT_KERNEL_NAME", "autoawait")
TIMEOUT = 20


def collect_until_idle(kc, msg_id, timeout=TIMEOUT):
    """Every IOPub message up to the idle of msg_id (all parents)."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        out.append(msg)
        if (
            msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
            and msg["parent_header"].get("msg_id") == msg_id
        ):
            return out


def reply_to(kc, msg_id, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def streams(msgs):
    return [m for m in msgs if m["msg_type"] == "stream"]


class KernelClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name=KERNEL)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel()

    def execute(self, code):
        msg_id = self.kc.execute(code)
        reply = reply_to(self.kc, msg_id)
        return msg_id, reply, collect_until_idle(self.kc, msg_id)

    def test_bad_signature_is_not_executed(self):
        forged = Session(key=b"not-the-key", username="mallory")
        forged.send(
            self.kc.shell_channel.socket,
            "execute_request",
            {"code": 'print("pwned")', "silent": False, "store_history": True,
             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        )
        unsigned = Session(key=b"", username="mallory")
        unsigned.send(
            self.kc.shell_channel.socket,
            "execute_request",
            {"code": 'print("unsigned")', "silent": False, "store_history": True,
             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        )
        msg_id, reply, msgs = self.execute('print("genuine")')
        self.assertEqual(reply["content"]["status"], "ok")
        texts = "".join(m["content"]["text"] for m in streams(msgs))
        self.assertIn("genuine", texts)
        self.assertNotIn("pwned", texts)
        self.assertNotIn("unsigned", texts)

    def test_interrupt_cancels_a_30s_sleep_and_the_next_cell_works(self):
        msg_id = self.kc.execute("await(sleep(30))")
        # Wait until the cell runs.
        while True:
            msg = self.kc.get_iopub_msg(timeout=TIMEOUT)
            if msg["msg_type"] == "execute_input" and msg["parent_header"]["msg_id"] == msg_id:
                break
        started = time.monotonic()
        self.km.interrupt_kernel()  # interrupt_mode "message": an interrupt_request on control
        reply = reply_to(self.kc, msg_id, timeout=15)
        self.assertLess(time.monotonic() - started, 15, "the interrupt took effect before the sleep ended")
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        collect_until_idle(self.kc, msg_id)

        _, reply, msgs = self.execute("1 + 1")
        self.assertEqual(reply["content"]["status"], "ok")
        results = [m for m in msgs if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "2")

    def test_background_output_carries_the_parent_of_the_cell_that_spawned_it(self):
        first, reply, _ = self.execute(
            'spawn(function() await(sleep(0.5)); print("from cell 1") end)'
        )
        self.assertEqual(reply["content"]["status"], "ok")
        second, reply, msgs = self.execute('await(sleep(2)); print("cell 2 done")')
        self.assertEqual(reply["content"]["status"], "ok")
        by_text = {m["content"]["text"]: m["parent_header"]["msg_id"] for m in streams(msgs)}
        self.assertEqual(by_text.get("from cell 1\n"), first, by_text)
        self.assertEqual(by_text.get("cell 2 done\n"), second, by_text)

    def test_interrupt_stops_a_busy_lua_loop(self):
        msg_id = self.kc.execute("while true do end")
        while True:
            msg = self.kc.get_iopub_msg(timeout=TIMEOUT)
            if msg["msg_type"] == "execute_input" and msg["parent_header"]["msg_id"] == msg_id:
                break
        time.sleep(0.2)
        self.km.interrupt_kernel()
        reply = reply_to(self.kc, msg_id, timeout=15)
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        collect_until_idle(self.kc, msg_id)
        _, reply, _ = self.execute("1")
        self.assertEqual(reply["content"]["status"], "ok")

    def test_user_expressions_are_lua_expressions(self):
        msg_id = self.kc.execute(
            "ue_x = 20",
            user_expressions={"sum": "ue_x + 22", "text": "markdown('**b**')", "bad": "ue_x +"},
        )
        reply = reply_to(self.kc, msg_id)
        collect_until_idle(self.kc, msg_id)
        user = reply["content"]["user_expressions"]
        self.assertEqual(user["sum"]["status"], "ok")
        self.assertEqual(user["sum"]["data"]["text/plain"], "42")
        self.assertEqual(user["text"]["data"]["text/markdown"], "**b**")
        self.assertEqual(user["bad"]["status"], "error")

    def test_a_display_handle_updates_its_display_from_a_later_cell(self):
        _, reply, msgs = self.execute('dh = display_handle(markdown("*first*"))')
        self.assertEqual(reply["content"]["status"], "ok")
        shown = [m for m in msgs if m["msg_type"] == "display_data"]
        self.assertEqual(shown[0]["content"]["data"]["text/markdown"], "*first*")
        display_id = shown[0]["content"]["transient"]["display_id"]
        _, reply, msgs = self.execute('dh:update("second")')
        updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
        self.assertEqual(updates[0]["content"]["transient"]["display_id"], display_id)
        self.assertEqual(updates[0]["content"]["data"]["text/plain"], '"second"')

    def test_a_question_mark_pages_help_on_lua_values_and_magics(self):
        self.execute("function paged_fn() end")
        for code, expected in [("paged_fn?", "a Lua function defined at"),
                               ("?%timeit", "%timeit [-n N]")]:
            _, reply, _ = self.execute(code)
            self.assertEqual(reply["content"]["status"], "ok")
            pages = reply["content"]["payload"]
            self.assertEqual(pages[0]["source"], "page")
            self.assertIn(expected, pages[0]["data"]["text/plain"])
        _, reply, _ = self.execute("no_such_name?")
        self.assertEqual(reply["content"]["ename"], "NameError")

    def test_silent_cells_do_not_shift_the_numbers_in_tracebacks(self):
        for _ in range(2):
            msg_id = self.kc.execute("x_silent = 1", silent=True)
            reply_to(self.kc, msg_id)
            collect_until_idle(self.kc, msg_id)
        _, reply, _ = self.execute('error("numbered")')
        count = reply["content"]["execution_count"]
        self.assertIn(f"In[{count}]:1", reply["content"]["evalue"] + "".join(reply["content"]["traceback"]))

    def test_reset_keeps_the_kernel_builtins(self):
        _, reply, msgs = self.execute("x_before_reset = 1\n%reset -f")
        self.assertEqual(reply["content"]["status"], "ok")
        _, reply, msgs = self.execute('print(type(input) .. " " .. type(clear_output) .. " " .. type(x_before_reset))')
        texts = "".join(m["content"]["text"] for m in streams(msgs))
        self.assertEqual(texts, "function function nil\n")

    def test_input_is_answered_over_stdin(self):
        msg_id = self.kc.execute('name = input("name? "); print("hello " .. name)', allow_stdin=True)
        request = self.kc.get_stdin_msg(timeout=TIMEOUT)
        self.assertEqual(request["msg_type"], "input_request")
        self.assertEqual(request["parent_header"]["msg_id"], msg_id)
        self.assertEqual(request["content"]["prompt"], "name? ")
        self.kc.input("Ada")
        reply = reply_to(self.kc, msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        texts = [m["content"]["text"] for m in streams(collect_until_idle(self.kc, msg_id))]
        self.assertIn("hello Ada\n", texts)

    def test_tokio_host_runs_cells_on_the_kernel_loop(self):
        _, reply, msgs = self.execute("%autoawait tokio-host")
        self.assertEqual(reply["content"]["status"], "ok", msgs)
        try:
            first, reply, _ = self.execute(
                'spawn(function() await(sleep(0.5)); print("host task") end)'
            )
            self.assertEqual(reply["content"]["status"], "ok")
            _, reply, msgs = self.execute("await(sleep(1.5)); return 6 * 7")
            self.assertEqual(reply["content"]["status"], "ok")
            results = [m for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")
            late = [m for m in streams(msgs) if m["content"]["text"] == "host task\n"]
            self.assertEqual(len(late), 1, msgs)
            self.assertEqual(late[0]["parent_header"]["msg_id"], first)
        finally:
            self.execute("%autoawait tokio")


def hb_ping(km, timeout=2.0):
    """One heartbeat round trip on a socket of our own; True if echoed in time."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(f"{km.transport}://{km.ip}:{km.hb_port}")
        sock.send(b"ping")
        if sock.poll(int(timeout * 1000)):
            return sock.recv() == b"ping"
        return False
    finally:
        sock.close()


def wait_for_input(kc, msg_id):
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["msg_type"] == "execute_input" and msg["parent_header"]["msg_id"] == msg_id:
            return


def control_request(kc, msg_type, content=None):
    msg = kc.session.msg(msg_type, content or {})
    kc.control_channel.send(msg)
    while True:
        reply = kc.control_channel.get_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply


def execute_in_subshell(kc, subshell_id, code):
    content = {"code": code, "silent": False, "store_history": True,
               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    msg = kc.session.msg("execute_request", content)
    msg["header"]["subshell_id"] = subshell_id
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def stream_text(msgs, name="stdout"):
    return "".join(m["content"]["text"] for m in streams(msgs) if m["content"]["name"] == name)


class RobustnessTests(unittest.TestCase):
    """Issue 11's must-shows, each against the real Lua engine."""

    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name=KERNEL)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel()

    def execute(self, code, **kw):
        msg_id = self.kc.execute(code, **kw)
        reply = reply_to(self.kc, msg_id)
        return msg_id, reply, collect_until_idle(self.kc, msg_id)

    def test_a_cpu_bound_cell_under_tokio_host_is_interrupted_within_2s(self):
        _, reply, _ = self.execute("%autoawait tokio-host")
        self.assertEqual(reply["content"]["status"], "ok")
        try:
            msg_id = self.kc.execute("while true do end")
            wait_for_input(self.kc, msg_id)
            time.sleep(0.3)
            self.assertTrue(hb_ping(self.km), "the heartbeat answers while the cell spins")
            started = time.monotonic()
            self.km.interrupt_kernel()
            reply = reply_to(self.kc, msg_id, timeout=10)
            self.assertLess(time.monotonic() - started, 2.0)
            self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
            collect_until_idle(self.kc, msg_id)
            _, reply, msgs = self.execute("return 40 + 2")
            self.assertEqual(reply["content"]["status"], "ok")
            results = [m for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")
        finally:
            self.execute("%autoawait tokio")

    def test_input_under_tokio_host_is_answered(self):
        self.execute("%autoawait tokio-host")
        try:
            msg_id = self.kc.execute('await(sleep(0.01)); local n = input("n? "); print("got " .. n)',
                                     allow_stdin=True)
            request = self.kc.get_stdin_msg(timeout=TIMEOUT)
            self.assertEqual(request["content"]["prompt"], "n? ")
            self.kc.input("7")
            reply = reply_to(self.kc, msg_id)
            self.assertEqual(reply["content"]["status"], "ok")
            self.assertIn("got 7\n", stream_text(collect_until_idle(self.kc, msg_id)))
        finally:
            self.execute("%autoawait tokio")

    def test_the_heartbeat_answers_while_a_cell_spins(self):
        msg_id = self.kc.execute("while true do end")
        wait_for_input(self.kc, msg_id)
        time.sleep(0.3)
        for _ in range(3):
            self.assertTrue(hb_ping(self.km))
        self.km.interrupt_kernel()
        self.assertEqual(reply_to(self.kc, msg_id)["content"]["ename"], "KeyboardInterrupt")
        collect_until_idle(self.kc, msg_id)

    def test_ten_thousand_printed_lines_all_arrive_in_order(self):
        _, reply, msgs = self.execute("for i = 1, 10000 do print(i) end")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(stream_text(msgs), "".join(f"{i}\n" for i in range(1, 10001)))
        self.assertLess(len(streams(msgs)), 50, "batched, not one message per line")

    def test_file_descriptor_output_reaches_the_cell(self):
        code = 'io.stdout:write("via io.stdout\\n"); io.stderr:write("via io.stderr\\n"); os.execute("echo from a child")'
        _, reply, msgs = self.execute(code)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        out = stream_text(msgs, "stdout")
        self.assertIn("via io.stdout\n", out)
        self.assertIn("from a child\n", out)
        self.assertIn("via io.stderr\n", stream_text(msgs, "stderr"))

    def test_kernel_info_speaks_5_5_with_subshells(self):
        for reply in [self.kc.kernel_info(reply=True, timeout=TIMEOUT),
                      control_request(self.kc, "kernel_info_request")]:
            self.assertEqual(reply["content"]["protocol_version"], "5.5")
            self.assertIn("kernel subshells", reply["content"]["supported_features"])

    def test_a_subshell_cell_finishes_while_the_main_cell_awaits_and_interrupts_reach_both(self):
        created = control_request(self.kc, "create_subshell_request")
        self.assertEqual(created["content"]["status"], "ok", created["content"])
        sid = created["content"]["subshell_id"]
        try:
            self.execute("progress = 0")
            main = self.kc.execute("for i = 1, 100 do progress = i; await(sleep(0.1)) end")
            wait_for_input(self.kc, main)
            time.sleep(0.3)
            look = execute_in_subshell(self.kc, sid, "return progress")
            reply = self.kc.get_shell_msg(timeout=5)
            self.assertEqual(reply["parent_header"]["msg_id"], look, "the subshell answers first")
            self.assertEqual(reply["content"]["status"], "ok")
            msgs = collect_until_idle(self.kc, look)
            seen = [m for m in msgs if m["msg_type"] == "execute_result"]
            self.assertGreater(int(seen[0]["content"]["data"]["text/plain"]), 0)

            slow = execute_in_subshell(self.kc, sid, "await(sleep(30))")
            time.sleep(0.3)
            self.km.interrupt_kernel()
            replies = {}
            for _ in range(2):
                r = self.kc.get_shell_msg(timeout=5)
                replies[r["parent_header"]["msg_id"]] = r["content"].get("ename")
            self.assertEqual(replies, {main: "KeyboardInterrupt", slow: "KeyboardInterrupt"})
            collect_until_idle(self.kc, main)
        finally:
            deleted = control_request(self.kc, "delete_subshell_request", {"subshell_id": sid})
            self.assertEqual(deleted["content"]["status"], "ok")
        listed = control_request(self.kc, "list_subshell_request")
        self.assertNotIn(sid, listed["content"]["subshell_id"])

    def test_exit_asks_the_front_end_to_exit(self):
        for code in ["exit", "quit()"]:
            _, reply, _ = self.execute(code)
            self.assertEqual(reply["content"]["status"], "ok")
            self.assertEqual(reply["content"]["payload"],
                             [{"source": "ask_exit", "keepkernel": False}])


def threads_of(km):
    """The number of threads of the kernel's process."""
    return len(os.listdir(f"/proc/{km.provisioner.process.pid}/task"))


class TwistedHostTests(unittest.TestCase):
    """Issue 13: `%autoawait twisted-host` turns the plugin's reactor on the kernel's
    own cell loop, with no reactor thread."""

    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name=KERNEL)
        _, reply, msgs = cls.execute(cls, "%load_ext twisted")
        assert reply["content"]["status"] == "ok", msgs
        cls.threads_before = threads_of(cls.km)
        _, reply, msgs = cls.execute(cls, "%autoawait twisted-host")
        assert reply["content"]["status"] == "ok", msgs

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel()

    def execute(self, code):
        msg_id = self.kc.execute(code)
        reply = reply_to(self.kc, msg_id)
        return msg_id, reply, collect_until_idle(self.kc, msg_id)

    def test_a_task_prints_five_times_into_its_own_cell_while_the_next_runs(self):
        first, reply, _ = self.execute(
            "spawn(function() for i = 1, 5 do await(twisted.sleep(0.1)); "
            "print('LOUD NOISES! ' .. i) end end)"
        )
        self.assertEqual(reply["content"]["status"], "ok")
        second, reply, msgs = self.execute("await(twisted.sleep(1)); print('cell 2 done')")
        self.assertEqual(reply["content"]["status"], "ok")
        noises = [m for m in streams(msgs) if "LOUD NOISES!" in m["content"]["text"]]
        lines = "".join(m["content"]["text"] for m in noises).splitlines()
        self.assertEqual(lines, [f"LOUD NOISES! {i}" for i in range(1, 6)], msgs)
        self.assertEqual({m["parent_header"]["msg_id"] for m in noises}, {first})
        done = [m for m in streams(msgs) if m["content"]["text"] == "cell 2 done\n"]
        self.assertEqual(done[0]["parent_header"]["msg_id"], second)
        # No reactor thread: the kernel's own threads turn the reactor.
        self.assertLessEqual(threads_of(self.km), self.threads_before)

    def test_call_later_output_belongs_to_the_cell_that_scheduled_it(self):
        first, reply, _ = self.execute(
            "spawn(function() await(twisted.call_later(0.3, function() "
            "print('called later') end)) end)"
        )
        self.assertEqual(reply["content"]["status"], "ok")
        _, reply, msgs = self.execute("await(twisted.sleep(0.8))")
        late = [m for m in streams(msgs) if m["content"]["text"] == "called later\n"]
        self.assertEqual(len(late), 1, msgs)
        self.assertEqual(late[0]["parent_header"]["msg_id"], first)

    def test_deferreds_fire_on_the_hosted_reactor(self):
        _, reply, msgs = self.execute(
            "d = await(twisted.deferred())\n"
            "await(twisted.call_later(0.05, function() d:callback(42) end))\n"
            "return await(d)"
        )
        self.assertEqual(reply["content"]["status"], "ok", msgs)
        results = [m for m in msgs if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")

    def test_an_interrupt_ends_a_30s_twisted_sleep_within_a_second(self):
        msg_id = self.kc.execute("await(twisted.sleep(30))")
        while True:
            msg = self.kc.get_iopub_msg(timeout=TIMEOUT)
            if msg["msg_type"] == "execute_input" and msg["parent_header"]["msg_id"] == msg_id:
                break
        time.sleep(0.2)
        started = time.monotonic()
        self.km.interrupt_kernel()
        reply = reply_to(self.kc, msg_id, timeout=15)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        collect_until_idle(self.kc, msg_id)
        _, reply, _ = self.execute("await(twisted.sleep(0.01)); return 1")
        self.assertEqual(reply["content"]["status"], "ok")


class JupyterRunTests(unittest.TestCase):
    def test_jupyter_run_prints_the_files_output(self):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write('print("from the file")\nprint(6 * 7)\n')
            path = f.name
        try:
            jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
            run = subprocess.run([jupyter, "run", f"--kernel={KERNEL}", path],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("from the file", run.stdout)
            self.assertIn("42", run.stdout)
        finally:
            os.unlink(path)


class NotebookTests(unittest.TestCase):
    def test_nbclient_puts_each_output_in_its_cell(self):
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell('print("one")'),
            nbformat.v4.new_code_cell("x = 20\nx + 22"),
            nbformat.v4.new_code_cell('display(markdown("**bold**"))'),
            nbformat.v4.new_code_cell('error("boom")'),
            nbformat.v4.new_code_cell("await(sleep(0.01)); return x"),
        ]
        NotebookClient(nb, kernel_name=KERNEL, timeout=60, allow_errors=True).execute()
        out = [c.outputs for c in nb.cells]
        self.assertEqual(out[0][0]["text"], "one\n")
        self.assertEqual(out[1][0]["data"]["text/plain"], "42")
        self.assertEqual(out[2][0]["data"]["text/markdown"], "**bold**")
        self.assertEqual(out[3][0]["output_type"], "error")
        self.assertEqual(out[4][0]["data"]["text/plain"], "20")
        self.assertEqual([c.execution_count for c in nb.cells], [1, 2, 3, 4, 5])

    def test_twenty_thousand_lines_land_in_a_handful_of_outputs(self):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("for i = 1, 20000 do print(i) end")]
        NotebookClient(nb, kernel_name=KERNEL, timeout=60).execute()
        outputs = nb.cells[0].outputs
        self.assertTrue(all(o["output_type"] == "stream" for o in outputs), outputs[:3])
        text = "".join(o["text"] for o in outputs)
        self.assertEqual(text, "".join(f"{i}\n" for i in range(1, 20001)))
        self.assertLessEqual(len(outputs), 10, f"{len(outputs)} output entries")

    def test_a_given_notebook_runs_headless(self):
        path = os.environ.get("AUTOAWAIT_NOTEBOOK")
        if not path:
            raise unittest.SkipTest("set AUTOAWAIT_NOTEBOOK=examples/tour.ipynb to run it")
        nb = nbformat.read(path, as_version=4)
        # The notebook is generated from the percent-format tour; they must agree.
        lua = os.path.splitext(path)[0] + ".lua"
        if os.path.exists(lua):
            import re
            with open(lua) as f:
                chunks = re.split(r"^-- %%", f.read(), flags=re.M)[1:]
            cells = [c.partition("\n")[2].strip("\n") for c in chunks]
            code = [c.source for c in nb.cells if c.cell_type == "code"]
            self.assertEqual(code, cells, "regenerate with examples/make_notebook.py")
        NotebookClient(nb, kernel_name=KERNEL, timeout=120).execute()
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        for cell in code_cells:
            for o in cell.outputs:
                self.assertNotEqual(o["output_type"], "error", (cell.source, o))
        # Each cell's own output lands in that cell.
        def outputs_of(fragment):
            cell = next(c for c in code_cells if fragment in c.source)
            return cell.outputs
        awake = outputs_of("I HAVE AWAKENED")
        self.assertTrue(
            any("I HAVE AWAKENED" in o.get("data", {}).get("text/markdown", "") for o in awake),
            awake,
        )
        fetched = outputs_of('fetch("one", 0.1)')
        self.assertTrue(
            any("one after 0.1 s" in o.get("data", {}).get("text/plain", "") for o in fetched),
            fetched,
        )
        started = outputs_of('print("ticker started")')
        self.assertTrue(
            any(o.get("name") == "stdout" and "ticker started" in o.get("text", "")
                for o in started),
            started,
        )
        # HTTP in a notebook, against the tour's own server, under twisted and smol.
        planets = outputs_of('planets = await(r:json()).planets')
        self.assertTrue(
            any('"earth"' in o.get("data", {}).get("text/plain", "") for o in planets),
            planets,
        )
        for runner in ("twisted", "smol"):
            got = outputs_of(f'three("{runner}")')
            self.assertTrue(
                any(f"{runner}: /a /b /c" in o.get("data", {}).get("text/plain", "")
                    for o in got),
                got,
            )


if __name__ == "__main__":
    unittest.main()
