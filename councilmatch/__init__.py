"""The foundation every stage builds on (home, settings, contracts, file I/O, memory).

Importing it makes Arrow allocate from jemalloc (``councilmatch.memory.use_arrow_pool``): every
process of the product (CLI, Airflow task, forked worker) imports this package first or soon
enough, and the choice must hold before the first large Arrow buffer."""

from councilmatch.memory import use_arrow_pool

use_arrow_pool()
