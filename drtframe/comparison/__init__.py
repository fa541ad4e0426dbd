"""`drtframe compare`: methods x budgets x benchmarks in one resumable run.

request    what a grid is asked to do, and the checks that refuse bad input early
grid       the request made concrete: methods and healers resolved, items read (driver and workers)
sequences  each method's removals for every budget, planned once and cached
variants   the dense model and its pruned variants scored on one item set, sharing the dense work
cells      evaluation cells and decision profiles: keys and values
workbench  the tasks a worker does (plan, score, heal) on its loaded model
store      the content-addressed, atomically written cache
runner     the driver that keys, stores and assembles (`drtframe.compare`); drtframe.execution runs the tasks
result     the outcome as data; outputs and plots write it out
"""
