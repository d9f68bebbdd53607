"""String building and formatting: an invoice report with f-strings, ``str.format``, ``%`` and joins.

Peregrine workload: FORMAT_VALUE/BUILD_STRING, method calls on str, and list-of-pieces joins, the
shape of templating, logging and report code.
"""

import pyperf

ITEMS = [(f"item-{i:03d}", (i * 37) % 100 + 0.99, i % 7 + 1) for i in range(200)]


def invoice_fstring(customer, items):
    lines = [f"Invoice for {customer}"]
    total = 0.0
    for name, price, quantity in items:
        amount = price * quantity
        total += amount
        lines.append(f"{name:<12} {quantity:>3} x {price:>7.2f} = {amount:>9.2f}")
    lines.append(f"{'TOTAL':<12} {total:>28.2f}")
    return "\n".join(lines)


# The three formatting styles are on purpose: each compiles to different bytecode.
def invoice_format(customer, items):
    lines = ["Invoice for {}".format(customer)]
    for name, price, quantity in items:
        lines.append("{0:<12} {1:>3} x {2:>7.2f}".format(name, quantity, price))
    return "\n".join(lines)


def invoice_percent(customer, items):
    out = "Invoice for %s\n" % customer
    for name, price, quantity in items:
        out += "%-12s %3d x %7.2f\n" % (name, quantity, price)
    return out


def slugify(title):
    words = []
    for word in title.lower().split():
        cleaned = "".join(ch for ch in word if ch.isalnum())
        if cleaned:
            words.append(cleaned)
    return "-".join(words)


def run():
    size = 0
    for n in range(10):
        customer = f"Customer #{n}"
        size += len(invoice_fstring(customer, ITEMS))
        size += len(invoice_format(customer, ITEMS))
        size += len(invoice_percent(customer, ITEMS))
    for i in range(300):
        size += len(slugify(f"The {i}th Annual Report: Results, Plans & Outlook!"))
    assert size == 200_510, size
    return size


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "f-strings, str.format, % formatting and joins"
    runner.bench_func("string_format", run)
