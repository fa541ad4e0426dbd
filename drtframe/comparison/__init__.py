"""`drtframe compare`: methods x budgets x benchmarks in one resumable run.

request   what a grid is asked to do, and the checks that refuse bad input early
sequences each method's removals for every budget, planned once and cached
variants  the dense model and its pruned variants scored on one item set, sharing the dense work
cells     evaluation cells and decision profiles: keys and values
store     the content-addressed, atomically written cache
runner    the driver that ties them together (`drtframe.compare`)
result    the outcome as data; outputs and plots write it out
"""
