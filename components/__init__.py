"""Pulumi components: they translate the plan (meshca.plan) into resources; they decide nothing.

One component per module, typed args, children with parent=self, register_outputs last.
"""
