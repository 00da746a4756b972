-- A tour of autoawait: Lua cells that await, run through the runner you pick.
-- Run it with (the plugin is built next to the binary, where %load_ext finds it):
--   cargo build --release -p autoawait-twisted && cargo run --release -- run examples/tour.lua
-- Each `-- %%` line starts a cell, as jupytext writes Lua; examples/tour.ipynb is the
-- same tour as a notebook (examples/make_notebook.py writes it). It mirrors the
-- twisted_ipython notebook.

-- %% Where are we? `%autoawait` with no argument says which runner cells use.
%autoawait

-- %% Load the twisted plugin: a callback reactor on mio, in a library loaded at run time.
%load_ext twisted

-- %% Every runner, the strategy it follows, and where it comes from.
%autoawait --list

-- %% Select it: its reactor runs on its own thread for the life of the process (crochet).
%autoawait twisted

-- %% An awaited sleep, then a rich value (markdown in a notebook, text here).
await(sleep(0.5))
markdown("**I HAVE AWAKENED!**")

-- %% twisted's own awaitables: call_later, and a Deferred that another task awaits.
d = await(twisted.deferred())
waiter = spawn(function() return await(d) end)
await(d:callback(await(twisted.call_later(0.1, function() return "fired" end))))
waiter:wait(2)

-- %% Globals persist across cells; the last expression is shown as Out[n].
-- `why(f, ...)` shows the error f(...) raises (its first line), for the cells below.
function why(f, ...)
  local ok, err = pcall(f, ...)
  return ok and "no error" or (tostring(err):gsub("\nstack traceback:.*", ""))
end

function fetch(name, secs)
  await(sleep(secs))
  return name .. " after " .. secs .. " s"
end
fetch("one", 0.1)

-- %% gather runs awaitables (and functions) concurrently: 0.3 s, not 0.5 s.
await(gather(
  function() return fetch("a", 0.3) end,
  function() return fetch("b", 0.2) end))

-- %% %%run_in_reactor starts the body in the background and binds a Task.
%%run_in_reactor result
local total = 0
for i = 1, 10 do
    total = total + i
end
await(sleep(0.2))
return total

-- %% crochet's EventualResult: wait with a timeout (it awaits, it never blocks the loop).
result:wait(2)

-- %% A background ticker. Its output finds its cell: ticks printed after this cell
-- finished are tagged with it, `[In n]`, even while the next cell runs.
ticker = spawn(function()
  for i = 1, 3 do
    await(sleep(0.1))
    print("tick " .. i)
  end
  return "ticker done"
end)
print("ticker started")

-- %% This cell just waits; the ticker prints meanwhile.
await(sleep(0.5))
ticker:wait(1)

-- %% Cells do real network work: `http` and `json` on the runner's own sockets.
-- First a small JSON server of our own, in Lua, as a background task on `tokio`:
-- the tour needs no network.
%autoawait tokio
server = await(tcp.listen("127.0.0.1:0"))
base = "http://" .. server:addr()
function serve(conn)
  local request = ""
  while not request:find("\r\n\r\n", 1, true) do
    local chunk = await(conn:read())
    if not chunk then return end
    request = request .. chunk
  end
  local path = request:match("^%u+ (%S+)")
  local body = json.encode({path = path, planets = {"mercury", "venus", "earth"}})
  await(conn:write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" ..
    "content-length: " .. #body .. "\r\nconnection: close\r\n\r\n" .. body))
  conn:close()
end
httpd = spawn{name = "httpd", function()
  while true do spawn(serve, (await(server:accept()))) end
end}
base:match("^http://127.0.0.1:")

-- %% A GET of JSON, parsed with :json() (`treq.get(url)` then `.json()` in the twisted post).
r = await(http.get(base .. "/planets"))
planets = await(r:json()).planets
r.status, r.headers["content-type"], planets[3]

-- %% Several requests at once with gather, the same cell under the twisted reactor ...
function three(tag)
  local a, b, c = await(gather(http.get(base .. "/a"), http.get(base .. "/b"), http.get(base .. "/c")))
  local paths = {}
  for _, resp in ipairs({a, b, c}) do paths[#paths + 1] = await(resp:json()).path end
  return tag .. ": " .. table.concat(paths, " ")
end
%autoawait twisted
three("twisted")

-- %% ... and under smol.
%autoawait smol
three("smol")

-- %% The server is a background task you can see (%tasks) and stop (%cancel).
%tasks

-- %% Cancelled, the server answers no more: a request times out (here after 1 s).
%cancel all
why(function() return await(http.get(base .. "/gone", {timeout = 1})) end)

-- %% Awaitables of one backend under another: a clear error, never a panic.
%autoawait smol
why(function() return await(tokio.sleep(0.1)) end)

-- %% ... and smol's own sleep works under smol.
await(smol.sleep(0.1))
"smol slept"

-- %% per-cell: the loop runs only while a cell of its runner runs (IPython's asyncio).
%autoawait tokio-per-cell
n = 0
counter = spawn(function() while true do await(sleep(0.01)); n = n + 1 end end)
await(sleep(0.1))
n > 0

-- %% Under another runner, the per-cell loop is not driven: the counter pauses.
%autoawait smol
before = n
await(sleep(0.2))
n - before

-- %% Back on tokio-per-cell, it resumes.
%autoawait tokio-per-cell
await(sleep(0.1))
n - before > 0

-- %% fresh: a new runtime per cell (trio.run): tasks end with their cell.
%autoawait tokio-fresh
counter:cancel()
doomed = spawn(function() await(sleep(10)) end)

-- %%
why(doomed.wait, doomed, 1)

-- %% A nested cell: run_cell under a threaded runner would wait for itself ...
%autoawait tokio
why(run_cell, "1 + 1")

-- %% ... and works under a re-entrant one (nest_asyncio's job).
%autoawait tokio-nested
run_cell("await(sleep(0.01)); return 'inner cell ran'")

-- %% Errors name the cell and line (In[n]:2 here), with a traceback when uncaught.
why(run_cell, "local x = 1\nerror('boom')")

-- %% Timing cells that await, which IPython's %timeit cannot do.
%autoawait tokio
%timeit -r 3 await(sleep(0))

-- %% With autoawait off, cells run synchronously and await says what to do.
%autoawait off
why(await, sleep(0))

-- %% Turned back on, everything awaits again.
%autoawait on
await(sleep(0.01))
"the end: %help lists the magics and builtins"
