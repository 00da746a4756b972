"""Writes examples/tour.ipynb from examples/tour.lua (percent format: `-- %%` starts a cell).

Run: python3 examples/make_notebook.py. The kernel tests check that the two agree.
"""
import json
import pathlib
import re

HERE = pathlib.Path(__file__).parent


def cells(source):
    """(title, code) for each `-- %%` cell of a percent-format Lua file."""
    out = []
    for chunk in re.split(r"^-- %%", source, flags=re.M)[1:]:
        title, _, code = chunk.partition("\n")
        out.append((title.strip(), code.strip("\n")))
    return out


def notebook(source):
    nb_cells = []
    for i, (title, code) in enumerate(cells(source)):
        if title:
            nb_cells.append({"cell_type": "markdown", "id": f"title-{i}", "metadata": {},
                             "source": title})
        nb_cells.append({"cell_type": "code", "id": f"cell-{i}", "metadata": {},
                         "execution_count": None, "outputs": [], "source": code})
    return {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"name": "autoawait", "display_name": "autoawait (Lua)",
                           "language": "lua"},
            "language_info": {"name": "lua", "file_extension": ".lua"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


if __name__ == "__main__":
    nb = notebook((HERE / "tour.lua").read_text())
    (HERE / "tour.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
